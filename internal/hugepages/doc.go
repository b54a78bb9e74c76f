// Package hugepages maps memory that decode reads in full at every step,
// the weights, outside the Go heap and asks the OS to back it with huge
// pages (2 MiB on x86-64).
//
// A decode step of SmolLM2-135M streams 143-270 MB of weights: with 4 KiB
// pages that is 35-66 thousand translations, each a page walk once the
// TLB has cycled, and hardware prefetchers that stop at every 4 KiB
// boundary. On Linux with transparent huge pages in "madvise" mode (the
// usual default) a mapping is backed by huge pages only if it asks with
// madvise(MADV_HUGEPAGE), which the Go heap does not do.
//
// Huge pages suit memory that is written in full soon after it is
// mapped: the first write anywhere in a huge page makes all of it
// resident. Memory touched sparsely, such as a KV cache pool whose blocks
// fill over time, is better left in ordinary pages.
//
// Off Linux, or where the mapping fails, a Region is one Go heap
// allocation; where transparent huge pages are disabled, the mapping is
// in ordinary pages.
package hugepages

// Package hugepages maps the memory that decode reads from front to back
// at every step, the weights and the KV cache, outside the Go heap and
// asks the OS to back it with 2 MiB pages.
//
// A decode step of SmolLM2-135M streams 143-270 MB of weights: with 4 KiB
// pages that is 35-66 thousand translations, each a page walk once the
// TLB has cycled, and hardware prefetchers that stop at every 4 KiB
// boundary. On Linux with transparent huge pages in "madvise" mode (the
// usual default) a mapping is backed by 2 MiB pages only if it asks with
// madvise(MADV_HUGEPAGE), which the Go heap does not do.
//
// Elsewhere, or where the mapping or the request fails, a Region falls
// back to the Go heap: the same bytes, in ordinary pages.
package hugepages

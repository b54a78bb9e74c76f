package adapters

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-ai/switchyard/lora"
	"github.com/switchyard-ai/switchyard/model"
)

// residentCache returns a cache with n adapters of the fake loader in
// tier 0, and their keys.
func residentCache(b *testing.B, n int) (*Cache, []string) {
	src := newFakeLoader(1 << 10)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = src.add(fmt.Sprintf("adapter-%05d", i))
	}
	c, err := NewCache(src, Budgets{Tier0: int64(n) << 10}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.Prefetch(context.Background(), keys...); err != nil {
		b.Fatal(err)
	}
	for _, k := range keys { // resolve the "name" aliases too
		h, err := c.Acquire(context.Background(), k[:len(k)-2])
		if err != nil {
			b.Fatal(err)
		}
		h.Release()
	}
	return c, keys
}

// BenchmarkAcquireReleaseHit measures the hit path with 10,000 adapters
// resident in tier 0: ns/op and allocs/op from the framework (calls in
// a row, whose cache misses overlap), and the p50/p99 of 1e6
// individually timed calls, over all 10,000 (cold caches) and over 64
// (hot), which include the cost of reading the clock (timer-ns).
func BenchmarkAcquireReleaseHit(b *testing.B) {
	c, keys := residentCache(b, 10000)
	ctx := context.Background()
	for _, mode := range []string{"version", "latest"} {
		refs := slices.Clone(keys)
		if mode == "latest" {
			for i, k := range refs {
				refs[i] = k[:len(k)-2] // "adapter-00042"
			}
		}
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h, err := c.Acquire(ctx, refs[i])
				if err != nil {
					b.Fatal(err)
				}
				h.Release()
				if i++; i == len(refs) {
					i = 0
				}
			}
			b.StopTimer()
			// Cold: a prime stride over all 10,000, so each call meets
			// its entry and map slot outside the CPU caches. Hot: 64
			// adapters in turn, as a server's popular ones are.
			p50, p99, timer := hitPercentiles(c, refs, 1_000_000)
			b.ReportMetric(p50, "p50-ns")
			b.ReportMetric(p99, "p99-ns")
			p50, p99, _ = hitPercentiles(c, refs[:64], 1_000_000)
			b.ReportMetric(p50, "hot-p50-ns")
			b.ReportMetric(p99, "hot-p99-ns")
			b.ReportMetric(timer, "timer-ns")
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				h, err := c.Acquire(ctx, keys[i])
				if err != nil {
					b.Fatal(err)
				}
				h.Release()
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	})
}

// hitPercentiles times n single Acquire+Release calls over refs in a
// scattered order and returns the median and 99th percentile in ns, and
// the median cost of an empty timed section.
func hitPercentiles(c *Cache, refs []string, n int) (p50, p99, timer float64) {
	ctx := context.Background()
	d := make([]time.Duration, n)
	empty := make([]time.Duration, n)
	j := 0
	for i := range d {
		t0 := time.Now()
		h, _ := c.Acquire(ctx, refs[j])
		h.Release()
		d[i] = time.Since(t0)
		t1 := time.Now()
		empty[i] = time.Since(t1)
		j = (j + 7919) % len(refs) // a prime stride: not the same cache lines each time
	}
	slices.Sort(d)
	slices.Sort(empty)
	return float64(d[n/2]), float64(d[n*99/100]), float64(empty[n/2])
}

// smolLoader serves distinct rank-8 q_proj+v_proj BF16 adapters for the
// SmolLM2-135M shape, generated on Fetch and decoded by lora.LoadFiles:
// the real tier-0 layout, without a registry's disk traffic.
type smolLoader struct {
	*fakeLoader
	cfg  *model.Config
	rank int
	tb   testing.TB
}

func (s *smolLoader) Fetch(_ context.Context, v *Version) (Files, error) {
	return peftFiles(s.tb, s.cfg, s.rank, uint64(v.Version)<<32|uint64(len(v.Name))^hashString(v.Name)), nil
}

func (s *smolLoader) Decode(v *Version, files Files) (*lora.Adapter, error) {
	return lora.LoadFiles(v.Key(), files, s.cfg)
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// BenchmarkCapacity10k loads 10,000 distinct rank-8 q_proj+v_proj BF16
// adapters for the SmolLM2-135M shape into tier 0 at once and reports
// the memory per adapter: payload (lora.Adapter.Bytes) and overhead (the
// rest of the heap growth). It needs about 10 GB of RAM, so it runs only
// with SWITCHYARD_BENCH_CAPACITY=1 (go test -run '^$' -bench Capacity10k
// -benchtime 1x).
func BenchmarkCapacity10k(b *testing.B) {
	if os.Getenv("SWITCHYARD_BENCH_CAPACITY") != "1" {
		b.Skip("set SWITCHYARD_BENCH_CAPACITY=1 (needs about 10 GB of RAM)")
	}
	const n = 10000
	for b.Loop() {
		src := &smolLoader{fakeLoader: newFakeLoader(0), cfg: smolConfig(), rank: 8, tb: b}
		keys := make([]string, n)
		for i := range keys {
			keys[i] = src.add(fmt.Sprintf("smol-%05d", i))
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := NewCache(src, Budgets{Tier0: 12 << 30}, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var wg sync.WaitGroup
		for w := range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for i := w; i < n; i += runtime.GOMAXPROCS(0) {
					if err := c.Prefetch(context.Background(), keys[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)

		res := c.Residency()
		var payload int64
		for _, r := range res {
			if r.Tier != Tier0 {
				b.Fatalf("%s@%d in tier %d", r.Name, r.Version, r.Tier)
			}
			payload += r.Bytes
		}
		if len(res) != n {
			b.Fatalf("%d adapters resident, want %d", len(res), n)
		}
		// Check one adapter end to end: it is distinct from its neighbour.
		h1, _ := c.Acquire(context.Background(), keys[0])
		h2, _ := c.Acquire(context.Background(), keys[1])
		if string(h1.Adapter().Pair(0, model.ModQ).A.Data) == string(h2.Adapter().Pair(0, model.ModQ).A.Data) {
			b.Fatal("adapters are not distinct")
		}
		h1.Release()
		h2.Release()
		grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		b.ReportMetric(float64(payload)/n, "payload-B/adapter")
		b.ReportMetric(float64(grown-payload)/n, "overhead-B/adapter")
		b.ReportMetric(float64(grown)/(1<<30), "heap-GiB")
		b.ReportMetric(float64(after.Sys)/(1<<30), "sys-GiB")
		b.ReportMetric(float64(elapsed.Microseconds())/n, "load-µs/adapter")
		c.Close()
	}
}

// missBench registers two adapters of about mb megabytes (SmolLM2 shape,
// q_proj+v_proj, BF16) in a registry with the given blob store and
// measures the time to tier 0 when every Acquire misses tiers 0-2 (the
// tier-0 budget holds one adapter and the two alternate). raw measures
// the raw read throughput of the same bytes from the same store.
func missBench(b *testing.B, mb float64, blobs string, opts *RegistryOptions) {
	cfg := smolConfig()
	rank := max(1, int(mb*1e6/115200+0.5)) // 115,200 bytes per rank
	dir := b.TempDir()
	if opts == nil {
		opts = &RegistryOptions{}
	}
	opts.Blobs, opts.Logger = blobs, quietLogger()
	r, err := Open(context.Background(), filepath.Join(dir, "reg"), cfg, "smollm2-135m", opts)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var vs []Version
	for i, name := range []string{"x", "y"} {
		src := filepath.Join(dir, name)
		os.Mkdir(src, 0o755)
		for fname, data := range peftFiles(b, cfg, rank, uint64(i)) {
			if err := os.WriteFile(filepath.Join(src, fname), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		v, err := r.Register(context.Background(), name, src)
		if err != nil {
			b.Fatal(err)
		}
		vs = append(vs, v)
	}
	c, err := NewCache(r, Budgets{Tier0: vs[0].TensorBytes + vs[1].TensorBytes/2}, &CacheOptions{Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	rawBytes := vs[0].Bytes
	raw := func() time.Duration { // read the files of x as the registry would, without checks
		t0 := time.Now()
		for _, f := range vs[0].Files {
			body, err := r.blobs.Get(ctx, r.blobName(f.SHA256))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, body)
			body.Close()
		}
		return time.Since(t0)
	}
	raw() // warm
	b.SetBytes(rawBytes)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		h, err := c.Acquire(ctx, vs[i%2].Name)
		if err != nil {
			b.Fatal(err)
		}
		h.Release()
		i++
	}
	b.StopTimer()
	var best time.Duration
	for range 5 {
		if d := raw(); best == 0 || d < best {
			best = d
		}
	}
	if m := c.met.misses[Tier0].Load(); m < uint64(b.N) {
		b.Fatalf("%d misses for %d acquires", m, b.N)
	}
	b.ReportMetric(float64(rawBytes)/1e6, "file-MB")
	b.ReportMetric(float64(rawBytes)/best.Seconds()/1e6, "raw-MB/s")
}

// BenchmarkMissDisk measures the time to tier 0 from a registry's blobs
// on local disk (page cache warm, as the raw read it is compared with).
func BenchmarkMissDisk(b *testing.B) {
	for _, mb := range []float64{1, 10, 30} {
		b.Run(fmt.Sprintf("%gMB", mb), func(b *testing.B) { missBench(b, mb, "", nil) })
	}
}

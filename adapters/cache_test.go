package adapters

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newTestCache(t *testing.T, src Loader, b Budgets, reg prometheus.Registerer) *Cache {
	t.Helper()
	c, err := NewCache(src, b, &CacheOptions{Metrics: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCacheConcurrent is the cache's main property test: 64 goroutines
// ask for 1,000 adapters under a tier-0 budget that holds 100. No
// adapter is loaded twice at once, every handle holds the adapter asked
// for (and keeps it while held), and tier 0 never exceeds its budget.
func TestCacheConcurrent(t *testing.T) {
	const (
		adapters   = 1000
		goroutines = 64
		size       = 1 << 10
	)
	iters := 300
	if testing.Short() {
		iters = 50
	}
	src := newFakeLoader(size)
	src.delay = 50 * time.Microsecond
	keys := make([]string, adapters)
	for i := range keys {
		keys[i] = src.add(fmt.Sprintf("a%d", i))
	}
	budget := int64(100 * size)
	c := newTestCache(t, src, Budgets{Tier0: budget, Tier1: 200 * 64}, nil)

	var wrong, over atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range iters {
				// Skewed popularity: a hot set of 50 gets half the requests.
				i := rng.IntN(adapters)
				if rng.IntN(2) == 0 {
					i = rng.IntN(50)
				}
				ref := keys[i]
				if rng.IntN(3) == 0 {
					ref = fmt.Sprintf("a%d", i) // the latest-version alias
				}
				h, err := c.Acquire(context.Background(), ref)
				if err != nil {
					t.Errorf("Acquire(%s): %v", ref, err)
					return
				}
				if a := h.Adapter(); a == nil || a.Name != keys[i] {
					wrong.Add(1)
				}
				if b := c.TierBytes(); b[Tier0] > budget {
					over.Add(1)
				}
				if rng.IntN(4) == 0 {
					time.Sleep(20 * time.Microsecond) // hold it while others evict
				}
				if a := h.Adapter(); a == nil || a.Name != keys[i] {
					wrong.Add(1) // evicted while in use
				}
				h.Release()
			}
		})
	}
	wg.Wait()

	maxInFlight, fetches := src.stats()
	if maxInFlight > 1 {
		t.Errorf("an adapter was loaded %d times at once", maxInFlight)
	}
	if n := wrong.Load(); n > 0 {
		t.Errorf("%d handles held the wrong adapter or lost it while in use", n)
	}
	if n := over.Load(); n > 0 {
		t.Errorf("tier 0 exceeded its budget %d times", n)
	}
	total := 0
	for _, n := range fetches {
		total += n
	}
	b := c.TierBytes()
	t.Logf("%d requests, %d loads of %d adapters, tier bytes %v", goroutines*iters, total, len(fetches), b)
	if b[Tier0] > budget || b[Tier1] > 200*64 {
		t.Errorf("tier bytes %v over budget", b)
	}
	for _, r := range c.Residency() {
		if r.InUse != 0 {
			t.Errorf("%s@%d still in use after every release", r.Name, r.Version)
		}
	}
}

// TestCacheHitPathNoAlloc checks the property the benchmark measures.
func TestCacheHitPathNoAlloc(t *testing.T) {
	src := newFakeLoader(100)
	key := src.add("a")
	c := newTestCache(t, src, Budgets{Tier0: 1 << 20}, prometheus.NewRegistry())
	for _, ref := range []string{key, "a"} {
		h, err := c.Acquire(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
		allocs := testing.AllocsPerRun(1000, func() {
			h, _ := c.Acquire(context.Background(), ref)
			h.Release()
		})
		if allocs != 0 {
			t.Errorf("Acquire(%q)+Release allocates %v times per hit", ref, allocs)
		}
	}
}

func TestCacheCancel(t *testing.T) {
	src := newFakeLoader(100)
	key := src.add("a")
	src.gate = make(chan struct{})
	c := newTestCache(t, src, Budgets{Tier0: 1 << 20}, nil)

	// A waiter that gives up returns at once; another one waiting for
	// the same load still gets the adapter.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Acquire(ctx, key)
		errc <- err
	}()
	got := make(chan *Handle, 1)
	go func() {
		h, err := c.Acquire(context.Background(), key)
		if err != nil {
			t.Error(err)
		}
		got <- h
	}()
	waitFor(t, func() bool { return loading(c, key) })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Acquire: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled Acquire did not return")
	}
	close(src.gate)
	h := <-got
	if h == nil || h.Adapter().Name != key {
		t.Fatalf("the other waiter got %v", h)
	}
	h.Release()

	// When every waiter gives up, the load stops, and the entry is not
	// poisoned: the next Acquire loads it again.
	key2 := src.add("b")
	src.gate = make(chan struct{})
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Acquire(ctx, key2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with deadline: %v", err)
	}
	waitFor(t, func() bool { return !loading(c, key2) })
	close(src.gate)
	h, err := c.Acquire(context.Background(), key2)
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if _, fetches := src.stats(); fetches[key2] != 2 {
		t.Errorf("%s fetched %d times, want 2 (one cancelled)", key2, fetches[key2])
	}
}

// loading reports whether a load of key is in progress.
// TestCacheJoinCalledOffLoad has a request join a load whose only other
// waiter has just given up, so that the load is called off but still
// running (its Fetch does not heed cancellation): the request, whose own
// context is fine, must get the adapter from a new load, not the called-
// off load's cancellation.
func TestCacheJoinCalledOffLoad(t *testing.T) {
	src := newFakeLoader(100)
	key := src.add("a")
	src.gate, src.stubborn = make(chan struct{}), true
	c := newTestCache(t, src, Budgets{Tier0: 1 << 20}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Acquire(ctx, key)
		errc <- err
	}()
	waitFor(t, func() bool { return loading(c, key) })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire: %v", err)
	}
	type result struct {
		h   *Handle
		err error
	}
	got := make(chan result, 1)
	go func() {
		h, err := c.Acquire(context.Background(), key)
		got <- result{h, err}
	}()
	waitFor(t, func() bool { // joined the called-off load
		c.mu.Lock()
		defer c.mu.Unlock()
		e := c.entries[key]
		return e != nil && e.flight != nil && e.flight.waiters == 1
	})
	close(src.gate)
	r := <-got
	if r.err != nil || r.h == nil || r.h.Adapter().Name != key {
		t.Fatalf("Acquire after joining a called-off load: %v, %v", r.h, r.err)
	}
	r.h.Release()
}

func loading(c *Cache, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	return e != nil && e.flight != nil
}

// onDisk reports whether key's tier-2 copy is written.
func onDisk(c *Cache, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	return e != nil && e.disk == diskReady
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("condition not reached in 5s")
		}
	}
}

// TestCacheMissDoesNotBlockOthers checks that a slow load does not hold
// up requests for other adapters.
func TestCacheMissDoesNotBlockOthers(t *testing.T) {
	src := newFakeLoader(100)
	slow, fast := src.add("slow"), src.add("fast")
	c := newTestCache(t, src, Budgets{Tier0: 1 << 20}, nil)
	h, err := c.Acquire(context.Background(), fast)
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	src.gate = make(chan struct{})
	defer close(src.gate)
	go c.Acquire(context.Background(), slow)
	waitFor(t, func() bool { return loading(c, slow) })
	done := make(chan struct{})
	go func() {
		h, err := c.Acquire(context.Background(), fast)
		if err == nil {
			h.Release()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a hit waited for another adapter's load")
	}
}

func TestCacheVersionReplacedWhileInUse(t *testing.T) {
	src := newFakeLoader(100)
	k1 := src.add("a")
	c := newTestCache(t, src, Budgets{Tier0: 1 << 20}, nil)
	h1, err := c.Acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	k2 := src.add("a") // a new version: "a" now means a@2
	h2, err := c.Acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if h1.Adapter().Name != k1 || h2.Adapter().Name != k2 {
		t.Fatalf("handles hold %s and %s, want %s and %s", h1.Adapter().Name, h2.Adapter().Name, k1, k2)
	}
	src.remove("a", 1) // deleted while h1 is in use
	if _, err := c.Acquire(context.Background(), k1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Acquire of a deleted version: %v", err)
	}
	if h1.Adapter() == nil || h1.Adapter().Name != k1 {
		t.Fatal("the handle on the deleted version lost its adapter")
	}
	if b := c.TierBytes(); b[Tier0] != 200 {
		t.Errorf("tier 0 holds %d bytes, want 200 (the deleted version is still in use)", b[Tier0])
	}
	h1.Release()
	if b := c.TierBytes(); b[Tier0] != 100 {
		t.Errorf("tier 0 holds %d bytes after the last release of the deleted version, want 100", b[Tier0])
	}
	h2.Release()
	for _, r := range c.Residency() {
		if r.Version == 1 {
			t.Errorf("deleted version still resident: %+v", r)
		}
	}
}

func TestCacheBudget(t *testing.T) {
	src := newFakeLoader(100)
	a, b := src.add("a"), src.add("b")
	c := newTestCache(t, src, Budgets{Tier0: 150}, nil)
	ha, err := c.Acquire(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	// b does not fit next to the pinned a.
	if _, err := c.Acquire(context.Background(), b); !errors.Is(err, ErrBudget) {
		t.Fatalf("Acquire over a pinned budget: %v", err)
	}
	ha.Release()
	hb, err := c.Acquire(context.Background(), b) // evicts a
	if err != nil {
		t.Fatal(err)
	}
	hb.Release()
	res := c.Residency()
	if len(res) != 1 || res[0].Name != "b" {
		t.Errorf("residency %+v, want only b", res)
	}
	big := newFakeLoader(200)
	k := big.add("big")
	c2 := newTestCache(t, big, Budgets{Tier0: 150}, nil)
	if _, err := c2.Acquire(context.Background(), k); !errors.Is(err, ErrBudget) {
		t.Errorf("adapter larger than the budget: %v", err)
	}
}

func TestCachePin(t *testing.T) {
	src := newFakeLoader(100)
	a, b, d := src.add("a"), src.add("b"), src.add("d")
	c := newTestCache(t, src, Budgets{Tier0: 200}, nil)
	if err := c.Pin(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	for range 3 { // b and d take turns in the one free slot; a stays
		for _, k := range []string{b, d} {
			h, err := c.Acquire(context.Background(), k)
			if err != nil {
				t.Fatal(err)
			}
			h.Release()
		}
	}
	res := c.Residency()
	if len(res) != 2 || res[0].Name != "a" || !res[0].Pinned || res[0].Tier != Tier0 {
		t.Errorf("residency %+v, want a pinned in tier 0", res)
	}
	if err := c.Unpin(a); err != nil {
		t.Fatal(err)
	}
	if err := c.Unpin(a); !errors.Is(err, ErrNotPinned) {
		t.Errorf("second Unpin: %v", err)
	}
}

// TestCacheTiers follows one adapter down the tiers and back.
func TestCacheTiers(t *testing.T) {
	src := newFakeLoader(100)
	a, b := src.add("a"), src.add("b")
	fileSize := int64(len("weights of a@1"))
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	c := newTestCache(t, src, Budgets{Tier0: 100, Tier1: fileSize, Tier2: 10 * fileSize, DiskDir: dir}, reg)
	acquire := func(k string) {
		t.Helper()
		h, err := c.Acquire(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	tierOf := func(name string) int {
		for _, r := range c.Residency() {
			if r.Name == name {
				return r.Tier
			}
		}
		return Tier3
	}
	acquire(a) // from the remote store into tiers 0, 1 and (after) 2
	waitFor(t, func() bool { return onDisk(c, a) })
	acquire(b) // evicts a from tier 0 (to its tier-1 copy) and a's raw copy
	if got := tierOf("a"); got != Tier2 {
		t.Errorf("a in tier %d after b took tiers 0 and 1, want 2", got)
	}
	acquire(a) // back from disk
	if _, fetches := src.stats(); fetches[a] != 1 {
		t.Errorf("a fetched %d times from the remote store, want 1", fetches[a])
	}
	if got := tierOf("a"); got != Tier0 {
		t.Errorf("a in tier %d, want 0", got)
	}

	// A damaged disk copy is detected and replaced from the remote store.
	acquire(b)
	waitFor(t, func() bool { return onDisk(c, b) })
	if err := os.WriteFile(filepath.Join(dir, a, "w"), []byte("weights of a@X"), 0o644); err != nil {
		t.Fatal(err)
	}
	acquire("b") // alias of b@1 in tier 0
	acquire(a)
	if _, fetches := src.stats(); fetches[a] != 2 {
		t.Errorf("a fetched %d times after its disk copy was damaged, want 2", fetches[a])
	}

	// A new cache adopts the disk tier of the old one.
	c.Close()
	c2 := newTestCache(t, src, Budgets{Tier0: 100, Tier2: 10 * fileSize, DiskDir: dir}, nil)
	h, err := c2.Acquire(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	if _, fetches := src.stats(); fetches[b] != 1 {
		t.Errorf("b fetched %d times, want 1 (the new cache reads the disk tier)", fetches[b])
	}

	var hits, loads float64
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "switchyard_adapter_cache_hits_total":
				hits += m.GetCounter().GetValue()
			case "switchyard_adapter_cache_load_seconds":
				loads += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if hits == 0 || loads == 0 {
		t.Errorf("metrics: %v hits, %v loads", hits, loads)
	}
}

func TestCachePrefetchAndWarm(t *testing.T) {
	src := newFakeLoader(100)
	a, b := src.add("a"), src.add("b")
	c := newTestCache(t, src, Budgets{Tier0: 1000}, nil)
	if err := c.Prefetch(context.Background(), a, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Prefetch with an unknown name: %v", err)
	}
	if n := c.Warm(context.Background(), []string{b, "../x"}); n != 1 {
		t.Errorf("Warm loaded %d, want 1", n)
	}
	for _, r := range c.Residency() {
		if r.Tier != Tier0 || r.InUse != 0 {
			t.Errorf("after prefetch: %+v", r)
		}
	}
	if len(c.Residency()) != 2 {
		t.Errorf("residency %+v", c.Residency())
	}
}

func TestCacheErrors(t *testing.T) {
	src := newFakeLoader(100)
	src.add("a")
	c := newTestCache(t, src, Budgets{Tier0: 1000}, nil)
	for _, ref := range []string{"../../etc", "a@0", "", "a/../../b"} {
		if _, err := c.Acquire(context.Background(), ref); !errors.Is(err, ErrBadName) {
			t.Errorf("Acquire(%q): %v, want ErrBadName", ref, err)
		}
	}
	if _, err := c.Acquire(context.Background(), "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Acquire(unknown): %v", err)
	}
	src.fetchErr = errors.New("store down")
	src.add("c")
	if _, err := c.Acquire(context.Background(), "c"); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Errorf("Acquire with a failing store: %v", err)
	}
	src.fetchErr = nil
	h, err := c.Acquire(context.Background(), "c") // the failure did not stick
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	c.Close()
	if _, err := c.Acquire(context.Background(), "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
}

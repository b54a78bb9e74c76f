package adapters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard-ai/switchyard/lora"
)

// Loader is where a Cache gets adapters from: the Registry, or a test
// double. Its methods are called without the Cache's locks held and may
// run concurrently.
type Loader interface {
	// Lookup returns the version ref names (the latest when
	// ref.Version is 0); the error wraps ErrNotFound when there is none.
	Lookup(ctx context.Context, ref Ref) (Version, error)

	// Fetch returns the files of v from the remote store (tier 3),
	// checked against v's checksums.
	Fetch(ctx context.Context, v *Version) (Files, error)

	// Decode makes v's files into a compute-ready adapter (tier 0).
	Decode(v *Version, files Files) (*lora.Adapter, error)

	// Watch calls fn with a name after a version of it is registered or
	// deleted, until stop is called. fn must not block.
	Watch(fn func(name string)) (stop func())
}

// Budgets are the byte budgets of the cache tiers.
type Budgets struct {
	// Tier0 bounds the compute-ready adapters (lora.Adapter.Bytes, the
	// weights; the few hundred bytes of bookkeeping per adapter are not
	// counted). It must be positive.
	Tier0 int64
	// Tier1 bounds the raw files kept in RAM; 0 disables tier 1.
	Tier1 int64
	// Tier2 bounds the files kept in DiskDir; 0 or an empty DiskDir
	// disables tier 2.
	Tier2 int64
	// DiskDir is the directory of tier 2, created if missing. The cache
	// owns it: what is there at start-up is adopted (and checked when
	// read) or removed.
	DiskDir string
}

// CacheOptions configures a Cache; nil means the zero value.
type CacheOptions struct {
	// Metrics receives the cache's Prometheus metrics (see the package
	// documentation); nil registers nothing.
	Metrics prometheus.Registerer
	// Logger receives warnings such as a damaged disk-tier file; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Tiers of the cache, from fastest to slowest.
const (
	Tier0  = 0 // compute-ready adapters in memory (*lora.Adapter)
	Tier1  = 1 // raw file bytes in memory
	Tier2  = 2 // files in the local disk directory
	Tier3  = 3 // the remote store (the Loader's Fetch)
	nTiers = 3 // tiers with a budget
)

// indexShards is the number of independently locked parts of the lookup
// index; a power of two.
const indexShards = 64

// Cache keeps adapters ready to serve in three budgeted tiers above the
// Loader's store: compute-ready in memory, raw files in memory, files on
// local disk. See the package documentation for the policy. It is safe
// for concurrent use.
type Cache struct {
	src Loader
	b   Budgets
	log *slog.Logger
	met *metrics

	// clock is the cache's logical time: it advances once per miss, and
	// a hit records it in the entry, so recency is measured in misses
	// (loads, the events that make evictions) and a hit never writes
	// shared memory other than its own entry.
	clock atomic.Uint64

	// index maps a reference as requested ("name@3", or "name" for the
	// latest version) to its entry. Writers hold mu as well.
	index [indexShards]indexShard

	mu       sync.Mutex // guards the fields below and the fields of every entry marked "mu"
	entries  map[string]*entry
	tiers    [nTiers]residents
	orphans  map[string]int64 // tier-2 directories found at start-up, by key, not yet claimed
	aliasGen uint64           // bumped whenever a name's versions change; see entryFor
	pins     map[string][]*entry
	gone     stats // counters of entries that were dropped, for the metrics
	closed   bool

	stopWatch func()
	loads     sync.WaitGroup
}

// indexShard is one part of the index, padded to its own cache lines so
// that readers of different shards do not share one.
type indexShard struct {
	mu sync.RWMutex
	m  map[string]*entry
	_  [64]byte
}

// entry is one adapter version known to the cache. A *Handle is an
// *entry.
type entry struct {
	// state is the tier-0 pin count, or -1 when the adapter is not in
	// tier 0 (absent, loading, or being evicted). A pin is taken by a
	// compare-and-swap from n >= 0 to n+1, and eviction swaps 0 for -1,
	// so an adapter is never evicted while pinned and never pinned
	// while being evicted.
	state   atomic.Int32
	lastUse atomic.Uint64 // Cache.clock at the last hit
	hits    atomic.Uint64 // tier-0 hits
	retired atomic.Bool   // its version was deleted: dropped when the last pin goes

	adapter *lora.Adapter // set while state >= 0; written under mu while state is -1
	c       *Cache
	key     string
	ver     Version

	// Guarded by mu.
	files    Files // tier 1 copy, nil when absent
	writing  Files // the files being written to tier 2, usable meanwhile
	disk     int   // diskNone, diskWriting or diskReady
	pos      [nTiers]int
	size     [nTiers]int64 // bytes accounted in each tier
	flight   *flight       // the load in progress, nil when none
	alias    string        // the name when index[name] is this entry
	explicit int           // Pin calls not yet undone by Unpin
	misses   uint64        // requests that had to wait for a load
	loadTime time.Duration // how long the last load took
	source   int           // the tier the last load read from
	dead     bool          // removed from entries; a new entry replaces it
}

// Tier-2 states of an entry.
const (
	diskNone = iota
	diskWriting
	diskReady
)

// stats are counters of dropped entries, kept for the metrics.
type stats struct {
	hits0 uint64
}

// flight is one load of an entry into tier 0, shared by every request
// for it.
type flight struct {
	done    chan struct{} // closed, under mu, when the load ends
	err     error         // the load's error, set before done is closed
	waiters int           // requests that get a pin when it succeeds (mu)
	holds   int           // prefetches that keep it going (mu)
	cancel  context.CancelFunc
}

// Handle is a pinned, compute-ready adapter: the adapter stays in memory,
// unchanged, until Release, even if its version is deleted or replaced
// meanwhile. Every Acquire of the same version returns the same *Handle;
// each must be matched by exactly one Release.
type Handle entry

// Adapter returns the compute-ready adapter. It must not be called after
// Release.
func (h *Handle) Adapter() *lora.Adapter { return h.adapter }

// Version returns the metadata of the adapter version h holds.
func (h *Handle) Version() *Version { return &h.ver }

// Release unpins the adapter. It must be called exactly once per
// Acquire; it does not allocate and takes no lock unless the version has
// been deleted meanwhile.
func (h *Handle) Release() {
	e := (*entry)(h)
	n := e.state.Add(-1)
	if n < 0 {
		panic("adapters: Handle released more often than acquired")
	}
	if n == 0 && e.retired.Load() {
		e.c.reap(e)
	}
}

// NewCache returns a cache over src with the given budgets. It adopts the
// files left in b.DiskDir by an earlier run (they are checked against
// their checksums when read) and removes temporary ones.
func NewCache(src Loader, b Budgets, opts *CacheOptions) (*Cache, error) {
	if opts == nil {
		opts = &CacheOptions{}
	}
	if b.Tier0 <= 0 {
		return nil, fmt.Errorf("adapters: cache: tier-0 budget %d must be positive", b.Tier0)
	}
	if b.Tier1 < 0 || b.Tier2 < 0 {
		return nil, fmt.Errorf("adapters: cache: negative budget")
	}
	if b.DiskDir == "" {
		b.Tier2 = 0
	}
	c := &Cache{
		src: src, b: b, log: opts.Logger,
		entries: make(map[string]*entry),
		orphans: make(map[string]int64),
		pins:    make(map[string][]*entry),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	for i := range c.index {
		c.index[i].m = make(map[string]*entry)
	}
	if b.Tier2 > 0 {
		if err := os.MkdirAll(b.DiskDir, 0o755); err != nil {
			return nil, fmt.Errorf("adapters: cache: %w", err)
		}
		c.adoptDisk()
	}
	met, err := newMetrics(c, opts.Metrics)
	if err != nil {
		return nil, err
	}
	c.met = met
	c.stopWatch = src.Watch(c.changed)
	return c, nil
}

// Close stops the cache: loads in progress are cancelled and waited for,
// and later calls fail with ErrClosed. Handles already given out stay
// valid.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, e := range c.entries {
		if e.flight != nil {
			e.flight.cancel()
		}
	}
	c.mu.Unlock()
	c.stopWatch()
	c.loads.Wait()
	return nil
}

// shard returns the index shard of a reference (FNV-1a of its bytes).
func (c *Cache) shard(ref string) *indexShard {
	h := uint32(2166136261)
	for i := 0; i < len(ref); i++ {
		h = (h ^ uint32(ref[i])) * 16777619
	}
	return &c.index[h&(indexShards-1)]
}

// lookup returns the entry ref is indexed under, or nil.
func (c *Cache) lookup(ref string) *entry {
	s := c.shard(ref)
	s.mu.RLock()
	e := s.m[ref]
	s.mu.RUnlock()
	return e
}

// setIndexLocked points ref at e (nil removes it). c.mu must be held.
func (c *Cache) setIndexLocked(ref string, e *entry) {
	s := c.shard(ref)
	s.mu.Lock()
	if e == nil {
		delete(s.m, ref)
	} else {
		s.m[ref] = e
	}
	s.mu.Unlock()
}

// tryPin pins e if its adapter is in tier 0.
func (e *entry) tryPin() bool {
	for {
		s := e.state.Load()
		if s < 0 {
			return false
		}
		if e.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// touch records a hit at the current logical time.
func (e *entry) touch(now uint64) {
	if e.lastUse.Load() != now {
		e.lastUse.Store(now)
	}
	e.hits.Add(1)
}

// Acquire returns a handle on the compute-ready adapter that ref names
// ("name" for its latest version, or "name@N"), loading it into tier 0
// if needed, and pins it until Release.
//
// A hit (the adapter already in tier 0) takes no lock but a shard's read
// lock and allocates nothing. A miss loads the adapter from the fastest
// tier that has it; concurrent misses for one version share one load,
// and loads never hold a lock that requests for other adapters need. If
// ctx ends first, Acquire returns ctx's error at once; the load goes on
// for the other requests waiting for it and stops when none is left.
//
// Errors wrap ErrBadName, ErrNotFound, ErrBudget (the adapter does not
// fit in tier 0 next to the pinned ones), ErrChecksum, ErrClosed, the
// Loader's errors or ctx's.
func (c *Cache) Acquire(ctx context.Context, ref string) (*Handle, error) {
	if e := c.lookup(ref); e != nil && e.tryPin() {
		e.touch(c.clock.Load())
		return (*Handle)(e), nil
	}
	return c.acquireSlow(ctx, ref, true)
}

// acquireSlow is the miss path of Acquire and of Prefetch (pin false:
// load without pinning).
func (c *Cache) acquireSlow(ctx context.Context, ref string, pin bool) (*Handle, error) {
	for {
		e, err := c.entryFor(ctx, ref)
		if err != nil {
			return nil, err
		}
		now := c.clock.Add(1)
		if pin && e.tryPin() {
			e.touch(now)
			return (*Handle)(e), nil
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, fmt.Errorf("adapters: acquire %s: cache %w", ref, ErrClosed)
		}
		if e.dead {
			c.mu.Unlock()
			continue // dropped since entryFor found it: look again
		}
		if e.state.Load() >= 0 {
			c.mu.Unlock()
			if !pin {
				return nil, nil
			}
			continue // loaded meanwhile: pin it (or, if just evicted, load again)
		}
		f := e.flight
		if f == nil {
			f = c.startLoadLocked(ctx, e)
		}
		if pin {
			f.waiters++
			e.misses++
		} else {
			f.holds++
		}
		c.mu.Unlock()
		c.met.miss0()

		select {
		case <-f.done:
			if f.err != nil && errors.Is(f.err, context.Canceled) && ctx.Err() == nil {
				// The load was called off (its last waiter gave up, the
				// version was retired, or the cache closed) after this
				// request joined it: look again, which starts a new
				// load, finds the new version or reports the close.
				continue
			}
			if f.err != nil {
				return nil, f.err
			}
			if pin {
				e.touch(c.clock.Load())
				return (*Handle)(e), nil // the load pinned it for us
			}
			return nil, nil
		case <-ctx.Done():
			c.mu.Lock()
			select {
			case <-f.done:
				c.mu.Unlock()
				if f.err == nil && pin {
					(*Handle)(e).Release()
				}
			default:
				if pin {
					f.waiters--
				} else {
					f.holds--
				}
				if f.waiters+f.holds == 0 {
					f.cancel()
				}
				c.mu.Unlock()
			}
			return nil, fmt.Errorf("adapters: acquire %s: %w", ref, context.Cause(ctx))
		}
	}
}

// entryFor returns the entry ref names, resolving it with the Loader and
// creating the entry when the index lacks it.
func (c *Cache) entryFor(ctx context.Context, ref string) (*entry, error) {
	if e := c.lookup(ref); e != nil {
		return e, nil
	}
	rf, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	gen := c.aliasGen
	c.mu.Unlock()
	v, err := c.src.Lookup(ctx, rf)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := v.Key()
	e := c.entries[key]
	if e == nil {
		e = &entry{c: c, key: key, ver: v, pos: [nTiers]int{-1, -1, -1}}
		e.state.Store(-1)
		c.entries[key] = e
		c.setIndexLocked(key, e)
		c.claimOrphanLocked(e)
	}
	// Remember "name" -> this version only if no version of any name
	// changed while Lookup ran: otherwise the answer may be stale, and
	// the next request asks again.
	if rf.Version == 0 && c.aliasGen == gen {
		if old := c.lookup(rf.Name); old != nil && old != e {
			old.alias = ""
		}
		e.alias = rf.Name
		c.setIndexLocked(rf.Name, e)
	}
	return e, nil
}

// changed is the Loader's Watch callback: versions of name were added or
// deleted. The "name" alias is dropped (the next request resolves it
// again) and entries of deleted versions are retired.
func (c *Cache) changed(name string) {
	c.mu.Lock()
	c.aliasGen++
	if e := c.lookup(name); e != nil {
		e.alias = ""
		c.setIndexLocked(name, nil)
	}
	var check []*entry
	for _, e := range c.entries {
		if e.ver.Name == name {
			check = append(check, e)
		}
	}
	c.mu.Unlock()
	for _, e := range check {
		if _, err := c.src.Lookup(context.Background(), e.ver.Ref()); errors.Is(err, ErrNotFound) {
			c.retire(e)
		}
	}
}

// retire drops a deleted version from the cache. Requests that hold it
// keep it until they release it.
func (c *Cache) retire(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.dead {
		return
	}
	e.retired.Store(true)
	if e.flight != nil {
		e.flight.cancel()
	}
	c.dropLocked(e, Tier1)
	c.dropLocked(e, Tier2)
	c.forgetLocked(e)
	if e.state.CompareAndSwap(0, -1) {
		c.dropLocked(e, Tier0)
	}
}

// reap frees the tier-0 copy of a retired entry after its last release.
func (c *Cache) reap(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.pos[Tier0] >= 0 && e.state.CompareAndSwap(0, -1) {
		c.dropLocked(e, Tier0)
	}
}

// forgetLocked removes e from the entries and the index; its remaining
// copies, if any, are freed by the caller or by reap. c.mu must be held.
func (c *Cache) forgetLocked(e *entry) {
	if e.dead {
		return
	}
	e.dead = true
	delete(c.entries, e.key)
	c.setIndexLocked(e.key, nil)
	if e.alias != "" {
		c.setIndexLocked(e.alias, nil)
		e.alias = ""
	}
	c.gone.hits0 += e.hits.Load()
}

// forgetIfEmptyLocked forgets e when no tier holds it and nothing refers
// to it, so that the entries do not grow with every adapter ever seen.
func (c *Cache) forgetIfEmptyLocked(e *entry) {
	if e.pos == [nTiers]int{-1, -1, -1} && e.flight == nil && e.explicit == 0 && e.state.Load() < 0 {
		c.forgetLocked(e)
	}
}

// startLoadLocked starts loading e into tier 0. c.mu must be held.
func (c *Cache) startLoadLocked(ctx context.Context, e *entry) *flight {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &flight{done: make(chan struct{}), cancel: cancel}
	e.flight = f
	c.loads.Add(1)
	go c.load(lctx, e, f)
	return f
}

// load reads e from the fastest tier that has it, decodes it and
// installs it in tier 0, pinned once for each waiting request.
func (c *Cache) load(ctx context.Context, e *entry, f *flight) {
	defer c.loads.Done()
	defer f.cancel()
	start := time.Now()
	c.mu.Lock()
	files, onDisk := e.files, e.disk == diskReady
	if files == nil {
		files = e.writing
	}
	c.mu.Unlock()

	source := Tier1
	var err error
	if files == nil && onDisk {
		source = Tier2
		if files, err = c.readDisk(e); err != nil {
			c.log.Warn("adapters: disk tier copy unusable, fetching again", "adapter", e.key, "err", err)
			c.mu.Lock()
			c.dropLocked(e, Tier2)
			c.mu.Unlock()
			files, err = nil, nil
		}
	}
	if files == nil {
		source = Tier3
		files, err = c.src.Fetch(ctx, &e.ver)
	}
	var a *lora.Adapter
	if err == nil {
		a, err = c.src.Decode(&e.ver, files)
	}
	if err == nil {
		err = context.Cause(ctx)
	}
	elapsed := time.Since(start)

	c.mu.Lock()
	e.flight = nil
	if err == nil {
		err = c.installLocked(e, a, files, f.waiters)
	}
	if err != nil {
		f.err = err
		if !errors.Is(err, context.Canceled) {
			c.log.Warn("adapters: load failed", "adapter", e.key, "source", tierName(source), "err", err)
		}
	} else {
		e.loadTime, e.source = elapsed, source
	}
	close(f.done)
	writeDisk := err == nil && source == Tier3 && c.reserveDiskLocked(e, files.Size())
	if writeDisk {
		e.writing = files
	}
	if err != nil {
		c.forgetIfEmptyLocked(e)
	}
	c.mu.Unlock()

	c.met.loaded(source, elapsed, err)
	if writeDisk {
		c.writeDisk(e, files)
	}
}

// installLocked puts a in tier 0 (and files in tier 1 when they fit),
// evicting what must go, and pins it pins times. c.mu must be held.
func (c *Cache) installLocked(e *entry, a *lora.Adapter, files Files, pins int) error {
	if c.closed {
		return fmt.Errorf("adapters: load %s: cache %w", e.key, ErrClosed)
	}
	if e.retired.Load() {
		return fmt.Errorf("adapters: load %s: %w (deleted while loading)", e.key, ErrNotFound)
	}
	if !c.makeRoomLocked(Tier0, a.Bytes, e) {
		return fmt.Errorf("adapters: load %s: %w: needs %d bytes, %d of the %d-byte budget are in use by pinned adapters",
			e.key, ErrBudget, a.Bytes, c.pinnedBytesLocked(), c.b.Tier0)
	}
	e.adapter = a
	c.addLocked(e, Tier0, a.Bytes)
	e.lastUse.Store(c.clock.Load())
	e.state.Store(int32(pins))
	if e.files == nil && c.makeRoomLocked(Tier1, files.Size(), e) {
		e.files = files
		c.addLocked(e, Tier1, files.Size())
	}
	return nil
}

// pinnedBytesLocked returns the tier-0 bytes of pinned adapters.
func (c *Cache) pinnedBytesLocked() int64 {
	var n int64
	for _, e := range c.tiers[Tier0].list {
		if e.state.Load() > 0 {
			n += e.size[Tier0]
		}
	}
	return n
}

// Prefetch loads the adapters refs name into tier 0 without pinning
// them, all at once, and waits for the loads; it returns their errors
// joined. Loading one adapter may evict others.
func (c *Cache) Prefetch(ctx context.Context, refs ...string) error {
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Go(func() {
			if e := c.lookup(ref); e != nil && e.state.Load() >= 0 {
				return
			}
			_, errs[i] = c.acquireSlow(ctx, ref, false)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Warm prefetches refs at start-up: failures are logged, not returned,
// so that one bad entry in a warm list does not stop a server. It
// returns how many adapters are in tier 0 afterwards.
func (c *Cache) Warm(ctx context.Context, refs []string) int {
	n := 0
	for _, ref := range refs {
		if err := c.Prefetch(ctx, ref); err != nil {
			c.log.Warn("adapters: warm-up failed", "adapter", ref, "err", err)
			continue
		}
		n++
	}
	return n
}

// Pin acquires ref and keeps it in tier 0 until Unpin with the same ref:
// for adapters too hot to risk a miss. Pins nest.
func (c *Cache) Pin(ctx context.Context, ref string) error {
	h, err := c.Acquire(ctx, ref)
	if err != nil {
		return err
	}
	e := (*entry)(h)
	c.mu.Lock()
	c.pins[ref] = append(c.pins[ref], e)
	e.explicit++
	c.mu.Unlock()
	return nil
}

// Unpin undoes one Pin of ref (the same string, so that unpinning "name"
// undoes the pin on the version it named then, even if a newer one has
// been registered since). The error wraps ErrNotPinned.
func (c *Cache) Unpin(ref string) error {
	c.mu.Lock()
	ps := c.pins[ref]
	if len(ps) == 0 {
		c.mu.Unlock()
		return fmt.Errorf("adapters: unpin %s: %w", ref, ErrNotPinned)
	}
	e := ps[len(ps)-1]
	if len(ps) == 1 {
		delete(c.pins, ref)
	} else {
		c.pins[ref] = ps[:len(ps)-1]
	}
	e.explicit--
	c.mu.Unlock()
	(*Handle)(e).Release()
	return nil
}

// Residency describes one adapter version the cache holds.
type Residency struct {
	Name     string
	Version  int
	Tier     int           // the fastest tier holding it (Tier0 ... Tier2)
	Bytes    int64         // its size in that tier
	Hits     uint64        // requests served from tier 0 at once
	Misses   uint64        // requests that waited for a load
	LoadTime time.Duration // how long its last load took
	Source   int           // the tier its last load read from
	Pinned   bool          // explicitly pinned (Pin)
	InUse    int           // handles not yet released
	Loading  bool          // a load is in progress
}

// Residency returns what the cache holds, sorted by name and version.
func (c *Cache) Residency() []Residency {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Residency, 0, len(c.entries))
	for _, e := range c.entries {
		r := Residency{
			Name: e.ver.Name, Version: e.ver.Version, Tier: Tier3,
			Hits: e.hits.Load(), Misses: e.misses, LoadTime: e.loadTime, Source: e.source,
			Pinned: e.explicit > 0, InUse: max(0, int(e.state.Load())) - e.explicit, Loading: e.flight != nil,
		}
		for t := range nTiers {
			if e.pos[t] >= 0 {
				r.Tier, r.Bytes = t, e.size[t]
				break
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Residency) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		return a.Version - b.Version
	})
	return out
}

// TierBytes returns the bytes accounted in each budgeted tier.
func (c *Cache) TierBytes() [nTiers]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b [nTiers]int64
	for t := range nTiers {
		b[t] = c.tiers[t].bytes
	}
	return b
}

// tierName names a tier in logs and metric labels.
func tierName(t int) string {
	switch t {
	case Tier0:
		return "memory"
	case Tier1:
		return "raw"
	case Tier2:
		return "disk"
	}
	return "remote"
}

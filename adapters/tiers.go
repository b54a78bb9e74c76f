package adapters

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
)

// residents is the set of entries one tier holds, in a slice so that
// eviction can scan it without allocating; entry.pos gives each entry's
// index for constant-time removal.
type residents struct {
	list  []*entry
	bytes int64
}

// budget returns the byte budget of tier t.
func (c *Cache) budget(t int) int64 {
	switch t {
	case Tier0:
		return c.b.Tier0
	case Tier1:
		return c.b.Tier1
	}
	return c.b.Tier2
}

// addLocked accounts e in tier t with n bytes. c.mu must be held.
func (c *Cache) addLocked(e *entry, t int, n int64) {
	r := &c.tiers[t]
	e.pos[t] = len(r.list)
	e.size[t] = n
	r.list = append(r.list, e)
	r.bytes += n
}

// removeLocked takes e out of tier t's accounting. c.mu must be held.
func (c *Cache) removeLocked(e *entry, t int) {
	r := &c.tiers[t]
	i := e.pos[t]
	if i < 0 {
		return
	}
	last := r.list[len(r.list)-1]
	r.list[i], last.pos[t] = last, i
	r.list[len(r.list)-1] = nil
	r.list = r.list[:len(r.list)-1]
	r.bytes -= e.size[t]
	e.pos[t], e.size[t] = -1, 0
}

// dropLocked frees e's copy in tier t. For tier 0 the caller must have
// swapped e.state from 0 to -1. A tier-2 copy being written is left to
// its writer, which removes it when it finds e dead. c.mu must be held.
func (c *Cache) dropLocked(e *entry, t int) {
	if e.pos[t] < 0 {
		return
	}
	switch t {
	case Tier0:
		e.adapter = nil
	case Tier1:
		e.files = nil
	case Tier2:
		if e.disk == diskWriting {
			return
		}
		if err := os.RemoveAll(c.diskPath(e.key)); err != nil {
			c.log.Warn("adapters: cannot remove disk tier copy", "adapter", e.key, "err", err)
		}
		e.disk = diskNone
	}
	c.removeLocked(e, t)
	c.forgetIfEmptyLocked(e)
}

// score ranks entries for eviction, lowest first: recency (the logical
// time of the last hit) plus a frequency bonus of n/4 ticks per doubling
// of the hit count, n being the tier's population. An adapter hit a
// thousand times outlives ten rounds of one-off loads (about 2.5 times
// the tier's turnover) but still ages out once it stops being used: LFU
// with aging, at the cost of two atomic loads per candidate.
func score(e *entry, n int) uint64 {
	return e.lastUse.Load() + uint64(min(bits.Len64(e.hits.Load()), 16))*uint64(max(1, n/4))
}

// victimLocked returns the entry of tier t to evict next, or nil when
// none may go: tier-0 entries that are pinned, the entry being installed
// (self) and tier-2 copies being written are skipped. In tier 1, copies
// of explicitly pinned adapters go first: they cannot be needed while
// the pin lasts. c.mu must be held.
func (c *Cache) victimLocked(t int, self *entry) *entry {
	list := c.tiers[t].list
	var best *entry
	var bestScore uint64
	for _, e := range list {
		if e == self || t == Tier0 && e.state.Load() != 0 || t == Tier2 && e.disk != diskReady {
			continue
		}
		s := score(e, len(list))
		if t == Tier1 && e.explicit > 0 {
			s = 0
		}
		if best == nil || s < bestScore {
			best, bestScore = e, s
		}
	}
	return best
}

// makeRoomLocked evicts from tier t until need more bytes fit in its
// budget, and reports whether they do. Tier-0 victims keep their copies
// in tiers 1 and 2, so eviction demotes rather than forgets; tier-2
// victims are deleted, the remote store still having them. c.mu must be
// held.
func (c *Cache) makeRoomLocked(t int, need int64, self *entry) bool {
	budget := c.budget(t)
	if need > budget {
		return false
	}
	for t == Tier2 && c.tiers[t].bytes+c.orphanBytesLocked()+need > budget && len(c.orphans) > 0 {
		for key := range c.orphans {
			c.removeOrphanLocked(key)
			c.met.evicted(t)
			break
		}
	}
	for c.tiers[t].bytes+need > budget {
		v := c.victimLocked(t, self)
		if v == nil {
			return false
		}
		if t == Tier0 && !v.state.CompareAndSwap(0, -1) {
			continue // pinned by a hit since victimLocked looked: choose again
		}
		c.dropLocked(v, t)
		c.met.evicted(t)
	}
	return true
}

// diskPath returns the tier-2 directory of a key. Keys are made of valid
// names and a version, so the path stays inside DiskDir.
func (c *Cache) diskPath(key string) string { return filepath.Join(c.b.DiskDir, key) }

// tmpDiskPrefix starts the names of tier-2 directories being written.
const tmpDiskPrefix = ".tmp-"

// adoptDisk scans DiskDir at start-up: directories named like a key are
// kept as orphans (claimed by the entry of that key when it is created,
// checked against the checksums when read), temporary ones from an
// interrupted write are removed, and orphans beyond the budget too.
func (c *Cache) adoptDisk() {
	ents, err := os.ReadDir(c.b.DiskDir)
	if err != nil {
		c.log.Warn("adapters: cannot read disk tier", "dir", c.b.DiskDir, "err", err)
		return
	}
	var total int64
	for _, de := range ents {
		p := filepath.Join(c.b.DiskDir, de.Name())
		if strings.HasPrefix(de.Name(), tmpDiskPrefix) {
			os.RemoveAll(p)
			continue
		}
		ref, err := ParseRef(de.Name())
		if err != nil || ref.Version == 0 || !de.IsDir() {
			continue // not ours
		}
		files, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		var size int64
		for _, f := range files {
			if info, err := f.Info(); err == nil && info.Mode().IsRegular() {
				size += info.Size()
			}
		}
		c.orphans[de.Name()] = size
		total += size
	}
	for key := range c.orphans {
		if total <= c.b.Tier2 {
			break
		}
		total -= c.orphans[key]
		c.removeOrphanLocked(key)
	}
}

// orphanBytesLocked returns the bytes of unclaimed tier-2 directories.
func (c *Cache) orphanBytesLocked() int64 {
	var n int64
	for _, s := range c.orphans {
		n += s
	}
	return n
}

// removeOrphanLocked deletes an unclaimed tier-2 directory.
func (c *Cache) removeOrphanLocked(key string) {
	delete(c.orphans, key)
	if err := os.RemoveAll(c.diskPath(key)); err != nil {
		c.log.Warn("adapters: cannot remove disk tier copy", "adapter", key, "err", err)
	}
}

// claimOrphanLocked gives a new entry the tier-2 copy an earlier run left.
func (c *Cache) claimOrphanLocked(e *entry) {
	size, ok := c.orphans[e.key]
	if !ok {
		return
	}
	delete(c.orphans, e.key)
	e.disk = diskReady
	c.addLocked(e, Tier2, size)
}

// reserveDiskLocked makes room in tier 2 for e's files and marks them as
// being written; it reports whether the caller should write them.
func (c *Cache) reserveDiskLocked(e *entry, size int64) bool {
	if c.b.Tier2 == 0 || e.disk != diskNone || e.dead || c.closed || !c.makeRoomLocked(Tier2, size, e) {
		return false
	}
	e.disk = diskWriting
	c.addLocked(e, Tier2, size)
	return true
}

// writeDisk writes e's files to tier 2: into a temporary directory, each
// file fsynced, then renamed into place, so a crash leaves either the
// whole copy or a temporary directory that the next start removes.
func (c *Cache) writeDisk(e *entry, files Files) {
	err := c.writeDiskFiles(e.key, files)
	c.mu.Lock()
	defer c.mu.Unlock()
	e.disk, e.writing = diskReady, nil
	if err != nil {
		c.log.Warn("adapters: cannot write disk tier copy", "adapter", e.key, "err", err)
	}
	if err != nil || e.dead {
		c.dropLocked(e, Tier2)
	}
}

func (c *Cache) writeDiskFiles(key string, files Files) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(c.b.DiskDir, tmpDiskPrefix+key+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		if err := writeFileSync(filepath.Join(tmp, name), b); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	final := c.diskPath(key)
	os.RemoveAll(final) // a stale copy that was never claimed
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if d, err := os.Open(c.b.DiskDir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// writeFileSync writes b to a new file and fsyncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readDisk reads e's files from tier 2 and checks them.
func (c *Cache) readDisk(e *entry) (Files, error) {
	dir := c.diskPath(e.key)
	files := make(Files, len(e.ver.Files))
	for _, f := range e.ver.Files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			return nil, fmt.Errorf("adapters: disk tier: %w", err)
		}
		if err := checkBlob(f, b); err != nil {
			return nil, fmt.Errorf("adapters: disk tier %s: %w", dir, err)
		}
		files[f.Name] = b
	}
	return files, nil
}

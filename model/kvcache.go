package model

import "github.com/switchyard-ai/switchyard/kernels"

// KVPool is a paged key/value store shared by many sequences: every layer's
// keys and values live in one slab cut into blocks of BlockTokens
// positions, and each sequence's Cache lists the blocks it holds (its
// block table). Sequences of any length share the pool without
// fragmentation, and a finished sequence gives its blocks straight back.
//
// A layer's slab is split by KV head first, then by block: one KV head's
// part of a block holds its values a position per row ([BlockTokens,
// HeadDim]) and its keys transposed, a feature per row ([HeadDim,
// BlockTokens]), so that attention computes both q·Kᵀ and p·V as sums of
// scaled rows, without horizontal sums. The keys and values of one head
// over blocks of consecutive ids are then one run of memory each, which
// attention, a head at a time, reads front to back.
//
// Keys and values are stored as float32 or as IEEE half floats (the
// model's KVDType when the pool is made). Decode reads a sequence's whole
// cache at every step, so half floats halve attention's memory traffic
// and double the positions a memory budget holds, at a rounding error of
// 2⁻¹¹ relative in each cached value. (A value beyond the half range,
// ±65504, becomes an infinity, as in llama.cpp's default f16 cache.)
//
// A KVPool and its caches are not safe for concurrent use; Forward and the
// code that grows and frees caches must run on one goroutine.
type KVPool struct {
	dtype       kernels.DType // F32 or F16
	blockTokens int           // positions per block
	blocks      int           // blocks in the pool
	kvDim       int           // values per position and layer: KVHeads*HeadDim
	headDim     int           // values per position, layer and KV head
	k, v        [][]float32   // F32: per layer, per KV head, per block: keys [headDim, blockTokens], values [blockTokens, headDim]
	k16, v16    [][]uint16    // F16: the same, as half floats
	free        []int32       // ids of the free blocks, used as a stack
}

// KVBlockBytes returns the memory one block of blockTokens positions takes
// in a pool NewKVPool makes: keys and values of every layer, stored as
// the model's KVDType.
func (m *Model) KVBlockBytes(blockTokens int) int64 {
	c := &m.Config
	return int64(2*c.Layers*blockTokens*c.KVHeads*c.HeadDim) * kvValueBytes(m.KVDType)
}

// kvValueBytes returns the size of one cached value of type dt, and
// panics for a type a KV pool cannot store.
func kvValueBytes(dt kernels.DType) int64 {
	switch dt {
	case kernels.F32:
		return 4
	case kernels.F16:
		return 2
	}
	panic("model: a KV cache stores F32 or F16, not " + dt.String())
}

// NewKVPool returns a pool of blocks blocks of blockTokens positions each,
// all free, storing keys and values as the model's KVDType (F32 or F16).
// It allocates blocks*KVBlockBytes(blockTokens) bytes at once.
func (m *Model) NewKVPool(blockTokens, blocks int) *KVPool {
	if blockTokens < 1 || blocks < 0 {
		panic("model: NewKVPool needs blockTokens >= 1 and blocks >= 0")
	}
	kvValueBytes(m.KVDType) // panics for other types
	c := &m.Config
	p := &KVPool{
		dtype:       m.KVDType,
		blockTokens: blockTokens,
		blocks:      blocks,
		kvDim:       c.KVHeads * c.HeadDim,
		headDim:     c.HeadDim,
		free:        make([]int32, blocks),
	}
	size := blocks * blockTokens * p.kvDim
	for range c.Layers {
		if p.dtype == kernels.F16 {
			p.k16, p.v16 = append(p.k16, make([]uint16, size)), append(p.v16, make([]uint16, size))
		} else {
			p.k, p.v = append(p.k, make([]float32, size)), append(p.v, make([]float32, size))
		}
	}
	// Hand out low ids first, which keeps a small pool's memory dense.
	for i := range p.free {
		p.free[i] = int32(blocks - 1 - i)
	}
	return p
}

// span returns the offset in a layer's slab of KV head h's part of block
// b: HeadDim rows of transposed keys in the key slab, BlockTokens value
// rows in the value slab.
func (p *KVPool) span(h, b int) int { return (h*p.blocks + b) * p.blockTokens * p.headDim }

// DType returns the type the pool stores keys and values as.
func (p *KVPool) DType() kernels.DType { return p.dtype }

// BlockTokens returns the number of positions per block.
func (p *KVPool) BlockTokens() int { return p.blockTokens }

// Blocks returns the number of blocks in the pool.
func (p *KVPool) Blocks() int { return p.blocks }

// FreeBlocks returns the number of blocks no cache holds.
func (p *KVPool) FreeBlocks() int { return len(p.free) }

// BlocksFor returns the number of blocks that hold n positions.
func (p *KVPool) BlocksFor(n int) int { return (n + p.blockTokens - 1) / p.blockTokens }

// NewCache returns an empty cache that takes its blocks from p.
func (p *KVPool) NewCache() *Cache { return &Cache{pool: p} }

// Cache is one sequence's key/value cache: for every layer, the keys and
// values of the positions seen so far, stored in the blocks of a KVPool.
// Position pos lives in block blocks[pos/BlockTokens], at offset
// pos%BlockTokens (for each KV head a row of values and a column of keys:
// see KVPool).
type Cache struct {
	Len int // positions filled
	Cap int // positions it may fill: those its blocks hold, at most its limit

	pool   *KVPool
	blocks []int32 // block table: the pool's block ids, in position order
	limit  int     // NewCache's capacity; 0 for none
}

// NewCache returns an empty cache for up to capacity positions (at most
// the model's context length when that is known), backed by a private
// pool of blocks of CacheBlockTokens positions, all of them its own.
func (m *Model) NewCache(capacity int) *Cache {
	if m.Config.MaxPositions > 0 {
		capacity = min(capacity, m.Config.MaxPositions)
	}
	capacity = max(capacity, 0)
	blocks := (capacity + CacheBlockTokens - 1) / CacheBlockTokens
	c := m.NewKVPool(CacheBlockTokens, blocks).NewCache()
	c.limit = capacity // the last block's spare positions stay unused
	if capacity > 0 {
		c.Grow(capacity)
	}
	return c
}

// CacheBlockTokens is the block size of the caches NewCache makes, and a
// good one for a KVPool: a block of one KV head's transposed keys is
// HeadDim rows of CacheBlockTokens values (64 bytes in F32, 32 in F16),
// which attention reads as one contiguous run. (With one block for a whole long sequence, those rows
// were thousands of bytes apart, and reading them in step ran at a third
// of the memory bandwidth.)
const CacheBlockTokens = 16

// Grow makes the cache hold at least n positions, taking blocks from its
// pool. It reports false, and takes nothing, when the pool has too few
// free blocks or n is beyond the capacity NewCache was given.
func (c *Cache) Grow(n int) bool {
	if c.limit > 0 && n > c.limit {
		return false
	}
	need := c.pool.BlocksFor(n) - len(c.blocks)
	if need <= 0 {
		return true
	}
	if need > len(c.pool.free) {
		return false
	}
	// Pop the blocks in stack order, so that a cache grown at once from
	// a fresh pool holds ascending, adjacent blocks (attention reads
	// adjacent value blocks in one run).
	f := c.pool.free
	for i := len(f) - 1; i >= len(f)-need; i-- {
		c.blocks = append(c.blocks, f[i])
	}
	c.pool.free = f[:len(f)-need]
	c.Cap = len(c.blocks) * c.pool.blockTokens
	if c.limit > 0 {
		c.Cap = min(c.Cap, c.limit)
	}
	return true
}

// Free gives every block back to the pool and empties the cache; it may
// grow again afterwards.
func (c *Cache) Free() {
	// Push in reverse, so that the next Grow pops them in their old,
	// ascending order (see Grow).
	for i := len(c.blocks) - 1; i >= 0; i-- {
		c.pool.free = append(c.pool.free, c.blocks[i])
	}
	c.blocks = c.blocks[:0]
	c.Len, c.Cap = 0, 0
}

// Blocks returns the number of blocks the cache holds.
func (c *Cache) Blocks() int { return len(c.blocks) }

// Truncate forgets positions from n on. It keeps the blocks.
func (c *Cache) Truncate(n int) { c.Len = min(c.Len, max(n, 0)) }

// row returns the pool row that holds position pos.
func (c *Cache) row(pos int) int {
	bt := c.pool.blockTokens
	return int(c.blocks[pos/bt])*bt + pos%bt
}

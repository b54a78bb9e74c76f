package kernels

import (
	"math/bits"
	"runtime"
	"sync/atomic"
	"time"
)

// Pool is a fixed set of worker goroutines that run the parallel parts of
// the kernels. One Pool is shared by a model and everything that runs it;
// its methods may be called from one goroutine at a time.
type Pool struct {
	threads int
	work    chan poolTask
	pending atomic.Int64 // tasks of the Parallel call in progress not yet done
	scratch [][]float32  // per worker: a buffer for dequantized weight rows

	mm    matmulTask               // the MatMul in progress
	mmRun func(worker, lo, hi int) // mm.run, bound once so MatMul does not allocate
}

type poolTask struct {
	fn             func(worker, lo, hi int)
	worker, lo, hi int
}

// NewPool starts a pool with the given number of threads; threads <= 0
// means one per CPU core.
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, work: make(chan poolTask, threads), scratch: make([][]float32, threads)}
	p.mmRun = p.mm.run
	for range threads - 1 { // the caller's goroutine is worker 0
		go p.worker()
	}
	return p
}

// spinTime is how long an idle worker polls for the next task before it
// blocks, and how long Parallel polls for its workers before it yields
// the thread between polls. A decode step runs a few hundred Parallel
// calls of 20-100 µs each; a worker that blocks between them is woken by
// the OS tens of microseconds late, which left the second core idle for
// most of each call (the layer-by-layer matmul benchmark ran no faster
// on two threads than on one). Spinning this long costs an idle server
// nothing noticeable: the workers block soon after the last step.
const spinTime = 200 * time.Microsecond

// worker runs tasks until the pool is closed, polling for the next one
// for spinTime before blocking on the channel.
func (p *Pool) worker() {
	for {
		t, ok := p.poll()
		if !ok {
			if t, ok = <-p.work; !ok {
				return
			}
		}
		t.fn(t.worker, t.lo, t.hi)
		p.pending.Add(-1)
	}
}

// poll returns the next task if one arrives within spinTime.
func (p *Pool) poll() (poolTask, bool) {
	deadline := time.Now().Add(spinTime)
	for i := 1; ; i++ {
		select {
		case t, ok := <-p.work:
			return t, ok
		default:
		}
		if i%64 == 0 {
			// Let other goroutines run (there may be more workers than
			// threads to run them), then look at the clock.
			runtime.Gosched()
			if time.Now().After(deadline) {
				return poolTask{}, false
			}
		}
	}
}

// Threads returns the number of workers, the caller included.
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() { close(p.work) }

// Parallel splits [0, n) into at most Threads contiguous chunks whose
// sizes are multiples of grain (but for the last) and runs fn on each,
// the caller's goroutine taking the first. It returns when all are done.
func (p *Pool) Parallel(n, grain int, fn func(worker, lo, hi int)) {
	if grain < 1 {
		grain = 1
	}
	chunks := min(p.threads, (n+grain-1)/grain)
	if chunks <= 1 {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	per := ((n+chunks-1)/chunks + grain - 1) / grain * grain
	p.pending.Store(int64((n+per-1)/per - 1))
	for w, lo := 1, per; lo < n; w, lo = w+1, lo+per {
		p.work <- poolTask{fn: fn, worker: w, lo: lo, hi: min(lo+per, n)}
	}
	fn(0, 0, min(per, n))
	// Wait for the workers: poll, and after spinTime give the thread to
	// other goroutines between polls (a worker may be descheduled).
	start := time.Now()
	for i := 0; p.pending.Load() > 0; i++ {
		if i%64 == 63 && time.Since(start) > spinTime {
			runtime.Gosched()
		}
	}
}

// Scratch returns worker w's reusable buffer of n floats. Its contents are
// undefined; MatMul uses it too, so it must not be held across calls.
func (p *Pool) Scratch(w, n int) []float32 {
	if cap(p.scratch[w]) < n {
		// Round up to a power of two: callers whose need grows a little
		// at a time (attention, one position per step) reallocate
		// rarely.
		p.scratch[w] = make([]float32, 1<<bits.Len(uint(n-1)))
	}
	return p.scratch[w][:n]
}

package kernels

import (
	"runtime"
	"sync"
)

// Pool is a fixed set of worker goroutines that run the parallel parts of
// the kernels. One Pool is shared by a model and everything that runs it;
// its methods may be called from one goroutine at a time.
type Pool struct {
	threads int
	work    chan poolTask
	wg      sync.WaitGroup
	scratch [][]float32 // per worker: a buffer for dequantized weight rows

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
		go func() {
			for t := range p.work {
				t.fn(t.worker, t.lo, t.hi)
				p.wg.Done()
			}
		}()
	}
	return p
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
	p.wg.Add((n+per-1)/per - 1)
	for w, lo := 1, per; lo < n; w, lo = w+1, lo+per {
		p.work <- poolTask{fn: fn, worker: w, lo: lo, hi: min(lo+per, n)}
	}
	fn(0, 0, min(per, n))
	p.wg.Wait()
}

// Scratch returns worker w's reusable buffer of n floats. Its contents are
// undefined; MatMul uses it too, so it must not be held across calls.
func (p *Pool) Scratch(w, n int) []float32 {
	if cap(p.scratch[w]) < n {
		p.scratch[w] = make([]float32, n)
	}
	return p.scratch[w][:n]
}

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
	crowded bool         // more threads than GOMAXPROCS: waiting gives way at once
	slots   []workerSlot // slots[w] hands tasks to worker w >= 1
	scratch [][]float32  // per worker: a buffer for dequantized weight rows

	tiles []tileRange              // per worker: tiles of the MatMul in progress not yet taken
	acts  []float32                // MatMul's quantized activations (see q8act.go)
	mm    matmulTask               // the MatMul in progress
	mmRun func(worker, lo, hi int) // mm.run, bound once so MatMul does not allocate
}

// workerSlot is how Parallel and one worker meet: Parallel writes the
// task and then advances posted; the worker, polling posted, runs the
// task and sets done to the posted count. A decode step makes a few
// hundred Parallel calls, so the hand-over is two cache-line transfers
// between the cores, not a channel (a lock on each side and, for a
// worker parked on it, an OS wake-up): BenchmarkParallelOverhead went
// from 1.1 µs to 0.18 µs a call.
type workerSlot struct {
	posted atomic.Uint64 // tasks handed to the worker
	done   atomic.Uint64 // tasks it has finished
	task   poolTask      // written before posted advances
	parked atomic.Bool   // the worker is blocked on wake, or about to be
	wake   chan struct{} // buffered 1: wakes a parked worker
	_      [64]byte      // keep slots on separate cache lines
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
	p := &Pool{threads: threads, crowded: threads > runtime.GOMAXPROCS(0), slots: make([]workerSlot, threads), scratch: make([][]float32, threads),
		tiles: make([]tileRange, threads)}
	p.mmRun = p.mm.run
	for w := 1; w < threads; w++ { // the caller's goroutine is worker 0
		p.slots[w].wake = make(chan struct{}, 1)
		go p.worker(&p.slots[w])
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

// worker runs the tasks posted to slot s until it gets one with no
// function (Close), polling for the next for spinTime before parking.
func (p *Pool) worker(s *workerSlot) {
	var seen uint64
	for {
		if !s.poll(seen) {
			s.park(seen)
		}
		seen++
		t := s.task
		if t.fn == nil {
			return
		}
		t.fn(t.worker, t.lo, t.hi)
		s.done.Store(seen)
	}
}

// poll reports whether a task past seen is posted within spinTime.
func (s *workerSlot) poll(seen uint64) bool {
	var deadline time.Time
	for i := 1; ; i++ {
		if s.posted.Load() != seen {
			return true
		}
		if i%256 == 0 {
			// Look at the clock, and let other goroutines run
			// (there may be more of them than threads).
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(spinTime)
			} else if now.After(deadline) {
				return false
			}
			runtime.Gosched()
		}
	}
}

// park blocks until a task past seen is posted. Parallel posts, then
// clears parked and sends on wake if it was set; the worker sets parked,
// then looks at posted. Both orders are sequentially consistent atomics,
// so at least one side sees the other's write: the worker never sleeps
// through a posted task, and a wake-up it does not wait for is consumed
// here, not left for the next park.
//
// A wake-up can also come late: a post delayed (descheduled) between
// advancing posted and looking at parked may find this worker parked
// after it has already run that task. The worker then finds nothing new
// posted and parks again.
func (s *workerSlot) park(seen uint64) {
	for {
		s.parked.Store(true)
		if s.posted.Load() != seen {
			if !s.parked.Swap(false) {
				<-s.wake // a post saw parked and sent (or is sending)
			}
			return
		}
		<-s.wake
		if s.posted.Load() != seen {
			return
		}
	}
}

// post hands task t to the slot's worker.
func (s *workerSlot) post(t poolTask) {
	s.task = t
	s.posted.Add(1)
	s.wakeIfParked()
}

// wakeIfParked is the second half of post: it wakes the worker if it is
// parked, or about to be.
func (s *workerSlot) wakeIfParked() {
	if s.parked.Load() && s.parked.Swap(false) {
		s.wake <- struct{}{}
	}
}

// Threads returns the number of workers, the caller included.
func (p *Pool) Threads() int { return p.threads }

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	for w := 1; w < p.threads; w++ {
		p.slots[w].post(poolTask{})
	}
}

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
	w := 1
	for lo := per; lo < n; w, lo = w+1, lo+per {
		p.slots[w].post(poolTask{fn: fn, worker: w, lo: lo, hi: min(lo+per, n)})
	}
	fn(0, 0, min(per, n))
	// Wait for the workers: poll, and after spinTime give the thread to
	// other goroutines between polls (a worker may be descheduled).
	var start time.Time
	for i := 1; i < w; i++ {
		s := &p.slots[i]
		for j := 1; s.done.Load() != s.posted.Load(); j++ {
			if j%256 == 0 {
				if start.IsZero() {
					start = time.Now()
				}
				// A worker may be waiting for this thread: yield
				// after spinTime, or at once if the pool has more
				// workers than the runtime runs at a time.
				if p.crowded || time.Since(start) > spinTime {
					runtime.Gosched()
				}
			}
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

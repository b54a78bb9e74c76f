package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParallelCoversEachIndexOnce(t *testing.T) {
	for threads := 1; threads <= 5; threads++ {
		p := NewPool(threads)
		for n := 0; n <= 40; n++ {
			for grain := 0; grain <= 7; grain++ {
				var mu sync.Mutex
				count := make([]int, n)
				workers := map[int]bool{}
				p.Parallel(n, grain, func(worker, lo, hi int) {
					mu.Lock()
					defer mu.Unlock()
					if worker < 0 || worker >= threads || workers[worker] {
						t.Errorf("threads=%d n=%d grain=%d: worker %d out of range or reused", threads, n, grain, worker)
					}
					workers[worker] = true
					if lo >= hi {
						t.Errorf("threads=%d n=%d grain=%d: empty chunk [%d,%d)", threads, n, grain, lo, hi)
					}
					if g := max(grain, 1); lo%g != 0 || hi != n && (hi-lo)%g != 0 {
						t.Errorf("threads=%d n=%d grain=%d: chunk [%d,%d) not on the grain", threads, n, grain, lo, hi)
					}
					for i := lo; i < hi; i++ {
						count[i]++
					}
				})
				for i, c := range count {
					if c != 1 {
						t.Fatalf("threads=%d n=%d grain=%d: index %d run %d times", threads, n, grain, i, c)
					}
				}
				if len(workers) > threads {
					t.Errorf("threads=%d n=%d: %d chunks", threads, n, len(workers))
				}
			}
		}
		p.Close()
	}
}

func TestParallelUsesAllThreads(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	var mu sync.Mutex
	chunks := 0
	p.Parallel(100, 1, func(worker, lo, hi int) {
		mu.Lock()
		chunks++
		mu.Unlock()
	})
	if chunks != 4 {
		t.Errorf("100 items on 4 threads ran in %d chunks", chunks)
	}
	chunks = 0
	p.Parallel(2, 1, func(worker, lo, hi int) { // fewer items than threads
		mu.Lock()
		chunks++
		mu.Unlock()
	})
	if chunks != 2 {
		t.Errorf("2 items on 4 threads ran in %d chunks", chunks)
	}
}

func TestScratch(t *testing.T) {
	p := NewPool(2)
	defer p.Close()
	a := p.Scratch(1, 10)
	if len(a) != 10 {
		t.Fatalf("len %d", len(a))
	}
	a[0] = 7
	if b := p.Scratch(1, 5); len(b) != 5 || b[0] != 7 {
		t.Errorf("Scratch did not reuse the buffer")
	}
	if c := p.Scratch(0, 5); &c[0] == &a[0] {
		t.Errorf("workers share a scratch buffer")
	}
}

// BenchmarkParallelOverhead measures one Parallel call with trivial work:
// the fixed cost every kernel call pays to use both cores.
func BenchmarkParallelOverhead(b *testing.B) {
	p := NewPool(0)
	defer p.Close()
	var sink [64]int64
	fn := func(w, lo, hi int) { sink[w*8] += int64(hi - lo) }
	for b.Loop() {
		p.Parallel(1024, 1, fn)
	}
}

// TestParallelAfterParking runs Parallel calls far enough apart that the
// workers park between them, and again back to back: every call must
// see every chunk run once, whichever way its worker was woken.
func TestParallelAfterParking(t *testing.T) {
	p := NewPool(3)
	for i := range 20 {
		if i%4 == 0 {
			time.Sleep(2 * spinTime)
		}
		var ran [3]atomic.Int32
		p.Parallel(3, 1, func(worker, lo, hi int) { ran[worker].Add(1) })
		for w := range ran {
			if n := ran[w].Load(); n != 1 {
				t.Fatalf("call %d: worker %d ran %d times", i, w, n)
			}
		}
	}
	before := runtime.NumGoroutine()
	p.Close()
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before-2; {
		if time.Now().After(deadline) {
			t.Fatalf("Close left %d of the 2 workers running", runtime.NumGoroutine()-(before-2))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkerLateWakeUp plays a post delayed between its two halves long
// enough for the worker to run the task, spin and park: its wake-up then
// finds nothing new posted. The worker must park again, not run the old
// task a second time (which left done past posted and hung the next
// Parallel).
func TestWorkerLateWakeUp(t *testing.T) {
	p := &Pool{}
	s := &workerSlot{wake: make(chan struct{}, 1)}
	var runs atomic.Int32
	task := poolTask{fn: func(worker, lo, hi int) { runs.Add(1) }}
	go p.worker(s)
	defer s.post(poolTask{}) // stops the worker

	s.task = task
	s.posted.Add(1) // the first half of a post
	for s.done.Load() != 1 || !s.parked.Load() {
		time.Sleep(spinTime / 4) // the worker runs the task, spins, parks
	}
	s.wakeIfParked() // the second half, late
	time.Sleep(4 * spinTime)
	if n, done := runs.Load(), s.done.Load(); n != 1 || done != 1 {
		t.Fatalf("after a late wake-up the task ran %d times and done is %d, want 1 and 1", n, done)
	}
	s.post(task)
	for deadline := time.Now().Add(5 * time.Second); s.done.Load() != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the next task did not finish: done %d, posted %d", s.done.Load(), s.posted.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("the task ran %d times, want 2", n)
	}
}

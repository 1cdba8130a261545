package llm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/llm"
)

// places records the places reported to one waiter.
type places struct {
	mu sync.Mutex
	ps []int
}

func (p *places) report(n int) { p.mu.Lock(); p.ps = append(p.ps, n); p.mu.Unlock() }
func (p *places) last() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ps) == 0 {
		return 0
	}
	return p.ps[len(p.ps)-1]
}

// waitUntil polls cond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGateFIFOAndPlaces(t *testing.T) {
	t.Parallel()
	g := llm.NewGate(1)
	ctx := context.Background()
	first, err := g.Acquire(ctx, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	var (
		order   = make(chan int, n)
		reports [n]places
		wg      sync.WaitGroup
	)
	for i := 0; i < n; i++ {
		// Join one at a time, so the line's order is known.
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			release, err := g.Acquire(ctx, "tiny:latest", reports[i].report) // the same model
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			release()
		}(i)
		waitUntil(t, "waiter to join", func() bool { return g.Stats("TINY").Waiting == i+1 })
		if got := reports[i].last(); got != i+1 {
			t.Fatalf("waiter %d joined at place %d, want %d", i, got, i+1)
		}
	}
	// Another model is not held up by tiny's line.
	other, err := g.Acquire(ctx, "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	other()
	first()
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("served %d, want %d (first come, first served)", got, want)
		}
		want++
	}
	// The last waiter moved up through every place.
	reports[n-1].mu.Lock()
	defer reports[n-1].mu.Unlock()
	if len(reports[n-1].ps) != n || reports[n-1].ps[0] != n || reports[n-1].ps[n-1] != 1 {
		t.Errorf("last waiter's places %v, want %d down to 1", reports[n-1].ps, n)
	}
	if s := g.Stats("tiny"); s != (llm.GateStats{}) {
		t.Errorf("after all released: %+v", s)
	}
}

// TestGateCancelWhileWaiting leaves the line when ctx ends: the others
// move up, and the one who left never gets a slot.
func TestGateCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	g := llm.NewGate(1)
	hold, err := g.Acquire(context.Background(), "m", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := g.Acquire(ctx, "m", nil)
		errc <- err
	}()
	waitUntil(t, "first waiter", func() bool { return g.Stats("m").Waiting == 1 })
	var behind places
	got := make(chan func(), 1)
	go func() {
		release, err := g.Acquire(context.Background(), "m", behind.report)
		if err != nil {
			t.Error(err)
		}
		got <- release
	}()
	waitUntil(t, "second waiter", func() bool { return g.Stats("m").Waiting == 2 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	waitUntil(t, "move up", func() bool { return behind.last() == 1 })
	hold()
	(<-got)()
	if s := g.Stats("m"); s != (llm.GateStats{}) {
		t.Errorf("after all released: %+v", s)
	}
}

func TestGateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit, acquire, running, waiting int
	}{
		{limit: 0, acquire: 50, running: 0, waiting: 0}, // no limit: nothing tracked
		{limit: 1, acquire: 3, running: 1, waiting: 2},
		{limit: 4, acquire: 6, running: 4, waiting: 2},
	}
	for _, tt := range tests {
		g := llm.NewGate(tt.limit)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < tt.acquire; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if release, err := g.Acquire(ctx, "m", nil); err == nil {
					<-ctx.Done()
					release()
				}
			}()
		}
		want := llm.GateStats{Running: tt.running, Waiting: tt.waiting}
		waitUntil(t, "the line to fill", func() bool { return g.Stats("m") == want })
		cancel()
		wg.Wait()
		if s := g.Stats("m"); s != (llm.GateStats{}) {
			t.Errorf("limit %d: after all left: %+v", tt.limit, s)
		}
	}
}

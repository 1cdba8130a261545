package gateway_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// TestSocketChurnReturnsToBaseline opens and closes 10,000 WebSockets (in
// rounds of 2,000, to stay under the per-process file limit with both
// ends in this process), each attached to a session, and checks that
// goroutines, connection actors and heap come back to where they were.
func TestSocketChurnReturnsToBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 sockets: skipped in -short")
	}
	s := newStack(t, stackOpts{})
	owner := s.dial("")
	var sessions []string
	for i := 0; i < 10; i++ {
		sessions = append(sessions, create(t, owner, nil))
	}
	owner.Close()
	waitCount(t, "connection actors", 0, func() int { return int(s.sys.Stats().Connections) })

	base := measure()
	const rounds, perRound = 5, 2000
	var peak snapshot
	for r := 0; r < rounds; r++ {
		clients := make([]*testkit.WSClient, perRound)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < perRound; i += 8 {
					c, _, err := testkit.TryDialWS(s.wsURL(), nil)
					if err != nil {
						t.Errorf("dial %d: %v", i, err)
						return
					}
					clients[i] = c.Bind(t)
					c.Send(map[string]any{"type": "attach", "session": sessions[i%len(sessions)], "id": "a"})
				}
			}(w)
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		for _, c := range clients {
			if f := c.Next(); f.Type != "ack" {
				t.Fatalf("attach: %s", f.Raw)
			}
		}
		waitCount(t, "open sockets", perRound, s.srv.OpenConnections)
		if r == 0 {
			peak = measure()
		}
		for _, c := range clients {
			c.Close()
		}
		waitCount(t, "open sockets", 0, s.srv.OpenConnections)
		waitCount(t, "connection actors", 0, func() int { return int(s.sys.Stats().Connections) })
	}
	var after snapshot
	deadline := time.Now().Add(20 * time.Second)
	for {
		after = measure()
		if after.goroutines <= base.goroutines+10 && after.heap <= base.heap+8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back to baseline: base %v, after %v", base, after)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("baseline %v; with %d sockets open %v (server and client in one process); after %d opened and closed %v",
		base, perRound, peak, rounds*perRound, after)
}

type snapshot struct {
	goroutines int
	heap       uint64
}

func (s snapshot) String() string {
	return fmt.Sprintf("%d goroutines, %.1f MiB heap in use", s.goroutines, float64(s.heap)/(1<<20))
}

func measure() snapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return snapshot{goroutines: runtime.NumGoroutine(), heap: ms.HeapInuse}
}

func waitCount(t *testing.T, what string, want int, get func() int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for get() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, get(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

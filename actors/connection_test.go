package actors

import (
	"context"
	"sync"
	"testing"
	"time"
)

// panicSink panics on its first Write and records closes.
type panicSink struct {
	mu       sync.Mutex
	writes   int
	closedAs []int
}

func (s *panicSink) Write(*Frame) {
	s.mu.Lock()
	s.writes++
	n := s.writes
	s.mu.Unlock()
	if n == 1 {
		panic("sink broke")
	}
}

func (s *panicSink) Close(code int, _ string) {
	s.mu.Lock()
	s.closedAs = append(s.closedAs, code)
	s.mu.Unlock()
}

func (s *panicSink) closes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.closedAs...)
}

// TestConnectionActorPanicClosesSocket: a connection actor that panics
// closes its socket with 1011 (the client resumes elsewhere), detaches
// from its sessions, and stops when the socket is gone.
func TestConnectionActorPanicClosesSocket(t *testing.T) {
	sys, _, _ := benchSystem(t, false)
	ctx := context.Background()
	info, err := sys.Create(ctx, "u", CreateParams{})
	if err != nil {
		t.Fatal(err)
	}
	sink := &panicSink{}
	c := sys.Connect("u", sink)
	c.Deliver(&Command{Type: CmdAttach, ID: "a", Session: info.ID}) // its ack is the first Write: panic
	waitUntil(t, "the socket closed with 1011", func() bool {
		cl := sink.closes()
		return len(cl) == 1 && cl[0] == 1011
	})
	// The restarted actor writes nothing more (a turn on the session
	// reaches the healthy connection only), and the socket's close stops
	// it.
	ok := &countSink{}
	c2 := sys.Connect("u", ok)
	c2.Deliver(&Command{Type: CmdAttach, ID: "a", Session: info.ID})
	waitUntil(t, "the second attach", func() bool { return ok.acks.Load() == 1 })
	c.Deliver(&Command{Type: CmdPing})
	if _, err := sys.Send(ctx, "u", info.ID, SendParams{Content: "hi"}); err != nil {
		t.Fatal(err)
	}
	d := waitIdle(t, sys, info.ID)
	if len(d.Messages) != 2 {
		t.Fatalf("messages %+v", d.Messages)
	}
	c.Closed()
	c2.Closed()
	waitUntil(t, "no connection actor left", func() bool { return sys.Stats().Connections == 0 })
	sink.mu.Lock()
	writes := sink.writes
	sink.mu.Unlock()
	if writes != 1 {
		t.Errorf("the broken sink got %d writes, want only the one that panicked", writes)
	}
	if n := len(sink.closes()); n != 1 {
		t.Errorf("sink closed %d times, want once", n)
	}
}

func waitIdle(t *testing.T, sys *System, id string) *SessionDetail {
	t.Helper()
	var d *SessionDetail
	waitUntil(t, "the reply", func() bool {
		var err error
		d, err = sys.Detail(context.Background(), "u", id)
		return err == nil && !d.Generating
	})
	return d
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

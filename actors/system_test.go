package actors_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm/ollama"
)

func newSystem(t *testing.T, idle time.Duration) (*actors.System, *testkit.ScriptedOllama) {
	t.Helper()
	store := testkit.NewNATS(t, "", "").Store(t)
	up := testkit.NewScriptedOllama(t, testkit.ScriptedConfig{})
	prov, err := ollama.New(ollama.Config{BaseURL: up.URL(), Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := actors.New(actors.Config{Store: store, Index: store, Snapshots: store, Provider: prov, DefaultModel: "tiny", SessionIdleTimeout: idle, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sys.Shutdown(ctx)
	})
	return sys, up
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitTurn polls the session until no generation runs.
func waitTurn(t *testing.T, sys *actors.System, user, id string) *actors.SessionDetail {
	t.Helper()
	var d *actors.SessionDetail
	waitFor(t, "the reply", func() bool {
		var err error
		d, err = sys.Detail(context.Background(), user, id)
		return err == nil && !d.Generating
	})
	return d
}

// TestPassivateAndRehydrate: an idle session leaves memory and the next
// command sees no difference.
func TestPassivateAndRehydrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sys, up := newSystem(t, 100*time.Millisecond)
	up.Push(testkit.TextReply("kept", 0))
	info, err := sys.Create(ctx, "u", actors.CreateParams{Title: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Send(ctx, "u", info.ID, actors.SendParams{Content: "q", ClientMsgID: "c"}); err != nil {
		t.Fatal(err)
	}
	before := waitTurn(t, sys, "u", info.ID)
	waitFor(t, "passivation", func() bool { return sys.ActiveSessions() == 0 })
	after, err := sys.Detail(ctx, "u", info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.LastSeq != before.LastSeq || len(after.Messages) != 2 || after.Messages[1].Content != "kept" {
		t.Errorf("after rehydration: %+v", after)
	}
	// Idempotency survives passivation: the msg id map is rebuilt.
	seq, err := sys.Send(ctx, "u", info.ID, actors.SendParams{Content: "q", ClientMsgID: "c"})
	if err != nil || seq != 2 {
		t.Errorf("retry after rehydration: %d, %v", seq, err)
	}
}

// TestPassivationRace sends commands to sessions that passivate every few
// milliseconds: every command gets its answer, none is lost in a stopping
// mailbox.
func TestPassivationRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sys, _ := newSystem(t, time.Millisecond) // ticks every 250µs… bounded below by the ticker
	var ids []string
	for i := 0; i < 5; i++ {
		info, err := sys.Create(ctx, "u", actors.CreateParams{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := sys.Detail(rctx, "u", ids[(w+i)%len(ids)])
				cancel()
				if err != nil {
					errs <- err
				}
				time.Sleep(time.Duration(i%3) * time.Millisecond)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("command lost or failed: %v", err)
	}
	st := sys.Stats()
	if st.Passivations < 5 || st.Rehydrations < 5 {
		t.Errorf("too little churn to test anything: %+v", st)
	}
	t.Logf("%+v", st)
}

// TestManySessionsPassivate creates 10,000 sessions, lets every one of them
// passivate (only active sessions stay in memory), and resumes some.
func TestManySessionsPassivate(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 sessions: skipped in -short")
	}
	t.Parallel()
	ctx := context.Background()
	sys, up := newSystem(t, 200*time.Millisecond)
	const n = 10000
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				info, err := sys.Create(ctx, "u", actors.CreateParams{Title: "s"})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = info.ID
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "all sessions to passivate", func() bool { return sys.ActiveSessions() == 0 })
	if st := sys.Stats(); st.Passivations < n {
		t.Fatalf("passivations %d", st.Passivations)
	}
	// Any one of them comes back as it was, and takes a turn.
	for _, i := range []int{0, 4999, n - 1} {
		up.Push(testkit.TextReply("back", 0))
		d, err := sys.Detail(ctx, "u", ids[i])
		if err != nil || d.LastSeq != 1 || d.Title != "s" {
			t.Fatalf("session %d: %+v %v", i, d, err)
		}
		if seq, err := sys.Send(ctx, "u", ids[i], actors.SendParams{Content: "hi"}); err != nil || seq != 2 {
			t.Fatalf("send to session %d: %d %v", i, seq, err)
		}
		if d := waitTurn(t, sys, "u", ids[i]); d.Messages[1].Content != "back" {
			t.Errorf("reply %+v", d.Messages)
		}
	}
	if a := sys.ActiveSessions(); a > 3 {
		t.Errorf("%d sessions in memory, want at most the 3 resumed", a)
	}
}

// TestRehydrateFromSnapshotAndTail: a session passivates (snapshot), gets
// more turns, passivates again after a long tail: each rehydration sees
// exactly the log's state.
func TestRehydrateFromSnapshotAndTail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sys, up := newSystem(t, 50*time.Millisecond)
	info, err := sys.Create(ctx, "u", actors.CreateParams{})
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			up.Push(testkit.TextReply(fmt.Sprintf("r%d.%d", round, i), 2))
			if _, err := sys.Send(ctx, "u", info.ID, actors.SendParams{Content: fmt.Sprintf("q%d.%d", round, i)}); err != nil {
				t.Fatal(err)
			}
			waitTurn(t, sys, "u", info.ID)
		}
		before, _ := sys.Detail(ctx, "u", info.ID)
		waitFor(t, "passivation", func() bool { return sys.ActiveSessions() == 0 })
		after, err := sys.Detail(ctx, "u", info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("round %d: state differs after rehydration\nbefore %+v\nafter  %+v", round, before, after)
		}
		if n := len(after.Messages); n != 10*(round+1) || after.Messages[n-1].Content != fmt.Sprintf("r%d.4", round) {
			t.Fatalf("round %d: %d messages", round, n)
		}
	}
}

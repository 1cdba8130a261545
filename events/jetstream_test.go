package events_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
)

func ev(session string, seq uint64, kind events.Kind, data any) events.Event {
	return events.New(session, seq, kind, time.Date(2026, 12, 4, 10, 0, 0, int(seq)*1e6, time.UTC), data)
}

func TestAppendLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testkit.NewNATS(t, "", "").Store(t)

	if _, _, err := st.Load(ctx, "nope", 0); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("load of unknown session: %v, want ErrNotFound", err)
	}
	pos, err := st.Append(ctx, "s1", 0,
		ev("s1", 1, events.KindSessionCreated, events.SessionCreated{Owner: "u", Model: "m"}),
		ev("s1", 2, events.KindMessageUser, events.MessageUser{Content: "hi"}))
	if err != nil {
		t.Fatal(err)
	}
	// Another session interleaved in the same stream.
	if _, err := st.Append(ctx, "s2", 0, ev("s2", 1, events.KindSessionCreated, events.SessionCreated{Owner: "v"})); err != nil {
		t.Fatal(err)
	}
	pos, err = st.Append(ctx, "s1", pos, ev("s1", 3, events.KindGenerationStarted, events.GenerationStarted{Model: "m", ReplyTo: 2}))
	if err != nil {
		t.Fatal(err)
	}
	got, last, err := st.Load(ctx, "s1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if last != pos || len(got) != 3 {
		t.Fatalf("load: %d events, last %d; want 3, %d", len(got), last, pos)
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) || e.Session != "s1" {
			t.Errorf("event %d: seq %d session %s", i, e.Seq, e.Session)
		}
	}
	var mu events.MessageUser
	if err := got[1].Decode(&mu); err != nil || mu.Content != "hi" {
		t.Errorf("decode: %v %+v", err, mu)
	}
	// Load after a position returns only the tail.
	tail, _, err := st.Load(ctx, "s1", Position2(t, st, ctx))
	if err != nil || len(tail) != 0 {
		t.Errorf("tail after last: %d events, %v", len(tail), err)
	}
}

// Position2 is the position of s1's last event.
func Position2(t *testing.T, st *events.JetStreamStore, ctx context.Context) events.Position {
	t.Helper()
	p, err := st.Last(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAppendConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testkit.NewNATS(t, "", "").Store(t)
	pos, err := st.Append(ctx, "s", 0, ev("s", 1, events.KindSessionCreated, events.SessionCreated{Owner: "u"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, "s", pos, ev("s", 2, events.KindMessageUser, events.MessageUser{Content: "a"})); err != nil {
		t.Fatal(err)
	}
	// A stale writer that still thinks the log ends at pos.
	_, err = st.Append(ctx, "s", pos, ev("s", 2, events.KindMessageUser, events.MessageUser{Content: "b"}))
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("stale append: %v, want ErrConflict", err)
	}
	// Expecting an empty subject where there is one is a conflict too.
	if _, err := st.Append(ctx, "s", 0, ev("s", 1, events.KindSessionCreated, events.SessionCreated{})); !errors.Is(err, events.ErrConflict) && err == nil {
		t.Fatalf("second create: %v", err)
	}
	got, _, _ := st.Load(ctx, "s", 0)
	if len(got) != 2 {
		t.Fatalf("log has %d events, want 2 (no fork)", len(got))
	}
	var mu events.MessageUser
	_ = got[1].Decode(&mu)
	if mu.Content != "a" {
		t.Errorf("seq 2 is %q, want the first writer's", mu.Content)
	}
}

func TestAppendRetryIsDeduplicated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testkit.NewNATS(t, "", "").Store(t)
	e1 := ev("s", 1, events.KindSessionCreated, events.SessionCreated{Owner: "u"})
	pos, err := st.Append(ctx, "s", 0, e1)
	if err != nil {
		t.Fatal(err)
	}
	// The same event again, as a writer retrying after a lost ack would.
	pos2, err := st.Append(ctx, "s", 0, e1)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if pos2 != pos {
		t.Errorf("retry position %d, want %d", pos2, pos)
	}
	got, _, _ := st.Load(ctx, "s", 0)
	if len(got) != 1 {
		t.Errorf("%d events after retry, want 1", len(got))
	}
}

func TestIndexListsOwnSessionsNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testkit.NewNATS(t, "", "").Store(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, owner := range []string{"alice", "bob", "alice", "al.ice*"} {
		info := events.SessionInfo{ID: fmt.Sprintf("s%d", i), Owner: owner, UpdatedAt: events.Time(base.Add(time.Duration(i) * time.Minute))}
		if err := st.PutSession(ctx, info); err != nil {
			t.Fatal(err)
		}
	}
	// An update replaces, never duplicates.
	if err := st.PutSession(ctx, events.SessionInfo{ID: "s0", Owner: "alice", Title: "new", UpdatedAt: events.Time(base.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		owner string
		want  []string
	}{
		{"alice", []string{"s0", "s2"}},
		{"bob", []string{"s1"}},
		{"al.ice*", []string{"s3"}},
		{"nobody", nil},
	}
	for _, tt := range tests {
		list, err := st.ListSessions(ctx, tt.owner)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
			t.Errorf("owner %q: %v, want %v", tt.owner, ids, tt.want)
		}
	}
}

func TestRestartKeepsLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	n := testkit.NewNATS(t, dir, "")
	st := n.Store(t)
	if _, err := st.Append(ctx, "s", 0, ev("s", 1, events.KindSessionCreated, events.SessionCreated{Owner: "u"})); err != nil {
		t.Fatal(err)
	}
	n.Close()
	st2 := testkit.NewNATS(t, dir, "").Store(t)
	got, _, err := st2.Load(ctx, "s", 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("after restart: %d events, %v", len(got), err)
	}
}

package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
)

// queuedAt waits for the queued frame of session id with position pos.
func queuedAt(t testing.TB, c *testkit.WSClient, id string, pos int) {
	t.Helper()
	c.Until(func(f testkit.Frame) bool {
		if f.Type != "queued" || f.Session != id {
			return false
		}
		var q struct{ Position int }
		if err := json.Unmarshal(f.Raw, &q); err != nil {
			t.Fatal(err)
		}
		return q.Position == pos
	})
}

// TestQueueAndStopWhileQueued runs three sessions against a model that
// takes one generation at a time: the second and third wait in line and
// their clients see their places; the second is stopped while waiting
// and never reaches the model server; the third moves up, runs when the
// first ends, and completes.
func TestQueueAndStopWhileQueued(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{concurrency: 1})
	hold := testkit.NewHold()
	s.upstream.Push(testkit.Script{testkit.StepContent("first "), hold.Step(), testkit.StepContent("reply"), testkit.StepDone()})
	s.upstream.Push(testkit.TextReply("third reply", 4))

	a, b, c := s.dial(""), s.dial(""), s.dial("")
	ida, idb, idc := create(t, a, nil), create(t, b, nil), create(t, c, nil)
	send(t, a, ida, "one")
	<-hold.Reached()
	send(t, b, idb, "two")
	queuedAt(t, b, idb, 1)
	send(t, c, idc, "three")
	queuedAt(t, c, idc, 2)

	// A second tab on the third session learns its place on attach.
	c2 := s.dial("")
	c2.Ack(c2.Command(map[string]any{"type": "attach", "session": idc, "after": "3"}))
	queuedAt(t, c2, idc, 2)

	ack, fs := stopReply(t, b, idb, 3)
	if f := fs[len(fs)-1]; f.Kind != "generation.stopped" || f.DataText() != "" {
		t.Fatalf("stopped while queued: %s", f.Raw)
	}
	if !*ack.Stopped {
		t.Errorf("stop ack %s", ack.Raw)
	}
	queuedAt(t, c, idc, 1)

	hold.Release()
	if fs := a.Terminal(ida, 3); fs[len(fs)-1].DataText() != "first reply" {
		t.Fatalf("first: %s", fs[len(fs)-1].Raw)
	}
	queuedAt(t, c, idc, 0)
	if fs := c.Terminal(idc, 3); fs[len(fs)-1].Kind != "generation.completed" || fs[len(fs)-1].DataText() != "third reply" {
		t.Fatalf("third: %s", fs[len(fs)-1].Raw)
	}
	reqs := s.upstream.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the model server got %d requests, want 2 (the stopped one never reaches it)", len(reqs))
	}
	for i, want := range []string{"one", "three"} {
		msgs := reqs[i].Chat.Messages
		if got := msgs[len(msgs)-1].Content; got != want {
			t.Errorf("request %d replies to %q, want %q", i, got, want)
		}
	}
}

// TestRetryBeforeFirstToken retries a request the model server refused
// before any output, and never one that had shown text.
func TestRetryBeforeFirstToken(t *testing.T) {
	t.Parallel()
	busy := testkit.Script{testkit.StepErrorStatus(503, "server busy")}
	tests := []struct {
		name     string
		scripts  []testkit.Script
		kind     string
		code     string
		text     string
		requests int
	}{
		{"refused twice, then served", []testkit.Script{busy, busy, testkit.TextReply("at last", 3)}, "generation.completed", "", "at last", 3},
		{"refused more than the retries", []testkit.Script{busy, busy, busy, testkit.TextReply("never", 3)}, "generation.failed", "upstream_unavailable", "", 3},
		{"error after text", []testkit.Script{{testkit.StepContent("shown "), testkit.StepError("CUDA error")}, testkit.TextReply("never", 3)}, "generation.failed", "upstream_error", "shown ", 1},
		{"not retryable", []testkit.Script{{testkit.StepErrorStatus(400, "bad options")}, testkit.TextReply("never", 3)}, "generation.failed", "upstream_error", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOpts{retry: actors.RetryPolicy{Retries: 2, Backoff: 10 * time.Millisecond}})
			s.upstream.Push(tt.scripts...)
			frames := turn(t, s)
			last := frames[len(frames)-1]
			if last.Kind != tt.kind || last.DataText() != tt.text {
				t.Fatalf("terminal %s, want %s with %q", last.Raw, tt.kind, tt.text)
			}
			if tt.code != "" && jsonField(t, last.Data, "error.code") != tt.code {
				t.Errorf("code: %s", last.Raw)
			}
			if n := len(s.upstream.Requests()); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
}

// titleScript answers the title request with title and every other
// request with "a reply".
func titleScript(title testkit.Script) func(*testkit.ScriptedRequest) testkit.Script {
	return func(r *testkit.ScriptedRequest) testkit.Script {
		if len(r.Chat.Messages) > 0 && strings.Contains(r.Chat.Messages[0].Content, "Write a title") {
			return title
		}
		return testkit.TextReply("a reply", 3)
	}
}

// TestTitles gives a session a title after its first completed turn, once;
// a title request that fails leaves the chat as it was.
func TestTitles(t *testing.T) {
	t.Parallel()
	t.Run("made", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, stackOpts{titles: true, scripted: testkit.ScriptedConfig{Script: titleScript(testkit.TextReply("Title: \"Greeting the\tworld.\"\nmore", 5))}})
		c := s.dial("")
		id := create(t, c, nil)
		send(t, c, id, "hello world")
		fs := c.Until(func(f testkit.Frame) bool { return f.Kind == "session.titled" })
		if got := jsonField(t, fs[len(fs)-1].Data, "title"); got != "Greeting the world" {
			t.Errorf("title %q", got)
		}
		// The title request is small and capped.
		var titleReq *testkit.ScriptedRequest
		for _, r := range s.upstream.WaitRequests(t, 2) {
			if strings.Contains(r.Chat.Messages[0].Content, "Write a title") {
				titleReq = r
			}
		}
		if titleReq == nil || titleReq.Chat.Options["num_predict"] == nil || !strings.Contains(titleReq.Chat.Messages[1].Content, "hello world") {
			t.Fatalf("title request %s", titleReq.Body)
		}
		// A second turn asks for no other title.
		ack := send(t, c, id, "again")
		c.Terminal(id, ack.Seq+1)
		if n := len(s.upstream.Requests()); n != 3 {
			t.Errorf("%d requests after two turns, want 3 (two replies, one title)", n)
		}
		status, body := s.do("GET", "/v1/sessions", "", nil)
		if status != 200 || !strings.Contains(string(body), `"title":"Greeting the world"`) {
			t.Errorf("list: %d %s", status, body)
		}
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, stackOpts{titles: true, scripted: testkit.ScriptedConfig{Script: titleScript(testkit.Script{testkit.StepError("title model crashed")})}})
		c := s.dial("")
		id := create(t, c, nil)
		send(t, c, id, "hello")
		c.Terminal(id, 3)
		s.upstream.WaitRequests(t, 2)
		ack := send(t, c, id, "still chatting")
		fs := c.Terminal(id, ack.Seq+1)
		if f := fs[len(fs)-1]; f.Kind != "generation.completed" || f.DataText() != "a reply" {
			t.Fatalf("second turn after a failed title: %s", f.Raw)
		}
		for _, f := range fs {
			if f.Kind == "session.titled" {
				t.Errorf("titled after a failed title request: %s", f.Raw)
			}
		}
	})
}

// TestLongSessionRequestBounded sends in a session of 10,000 turns: the
// request upstream fits the model's window (2,048 tokens, as /api/show
// reports it) less the reply's reserve, keeps the newest turns, and
// generation.started records what was left out.
func TestLongSessionRequestBounded(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	c := s.dial("")
	id := create(t, c, nil)
	c.Close()
	// Write the turns straight into the log, then let the session actor
	// rehydrate from it.
	store := s.nats.Store(t)
	ctx := context.Background()
	const turns = 10000
	evs, pos, err := store.Load(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	seq := evs[len(evs)-1].Seq
	for i := 0; i < turns; i++ {
		user, gen := seq+1, seq+2
		batch := []events.Event{
			events.New(id, user, events.KindMessageUser, at, events.MessageUser{Content: fmt.Sprintf("question number %d", i)}),
			events.New(id, gen, events.KindGenerationStarted, at, events.GenerationStarted{Model: "tiny", ReplyTo: user}),
			events.New(id, gen+1, events.KindGenerationCompleted, at, events.GenerationCompleted{Gen: gen, Text: fmt.Sprintf("answer number %d, somewhat longer", i)}),
		}
		if pos, err = store.Append(ctx, id, pos, batch...); err != nil {
			t.Fatal(err)
		}
		seq = gen + 1
	}
	// The live session actor's position is now behind the log: the send's
	// append conflicts, the actor reloads the log and retries once.
	r := s.dial("")
	r.Ack(r.Command(map[string]any{"type": "attach", "session": id, "after": fmt.Sprint(seq)}))
	ack := send(t, r, id, "the newest question")
	fs := r.Terminal(id, ack.Seq+1)
	var started events.GenerationStarted
	for _, f := range fs {
		if f.Kind == "generation.started" {
			if err := json.Unmarshal(f.Data, &started); err != nil {
				t.Fatal(err)
			}
		}
	}
	info := started.Context
	if info == nil || info.Window != 2048 || info.Omitted == 0 || info.Messages+info.Omitted != 2*turns+1 {
		t.Fatalf("generation.started context %+v", info)
	}
	req := s.upstream.Requests()[0]
	msgs := req.Chat.Messages
	tokens := 0
	for _, m := range msgs {
		tokens += llm.EstimateMessage(llm.Message{Role: m.Role, Content: m.Content})
	}
	budget := 2048 - llm.ReplyReserve(2048)
	if tokens > budget || tokens != info.Tokens || len(msgs) != info.Messages {
		t.Errorf("request of %d messages, %d tokens; budget %d; recorded %+v", len(msgs), tokens, budget, info)
	}
	if last := msgs[len(msgs)-1].Content; last != "the newest question" {
		t.Errorf("last message %q", last)
	}
	if prev := msgs[len(msgs)-2].Content; prev != fmt.Sprintf("answer number %d, somewhat longer", turns-1) {
		t.Errorf("the newest turn before it is %q", prev)
	}
	t.Logf("%d turns: sent %d messages (%d tokens est.), left out %d through seq %d; request body %d bytes",
		turns, len(msgs), tokens, info.Omitted, info.OmittedThrough, len(req.Body))
}

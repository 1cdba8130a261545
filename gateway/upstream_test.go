package gateway_test

import (
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm/ollama"
)

// turn sends one message on a fresh session and returns the frames up to
// the reply's terminal event, the last of which is that event.
func turn(t *testing.T, s *stack) []testkit.Frame {
	t.Helper()
	c := s.dial("")
	id := create(t, c, nil)
	ack := send(t, c, id, "hello")
	return c.Terminal(id, ack.Seq+1)
}

// TestUpstreamFaults covers the ways a model server fails: each ends the
// generation as failed with the right code, keeping the text already
// shown, and never as completed.
func TestUpstreamFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		script   testkit.Script
		code     string
		wantText string
	}{
		{"error before output", testkit.Script{testkit.StepError("model failed to load")}, "upstream_error", ""},
		{"overloaded", testkit.Script{testkit.StepErrorStatus(503, "server busy")}, "upstream_unavailable", ""},
		{"error mid-stream", testkit.Script{testkit.StepContent("half "), testkit.StepError("CUDA error")}, "upstream_error", "half "},
		{"cut stream", testkit.Script{testkit.StepContent("cut "), testkit.StepCut()}, "upstream_error", "cut "},
		{"no done record", testkit.Script{testkit.StepContent("loop "), testkit.StepEnd()}, "upstream_error", "loop "},
		{"proxy page", testkit.Script{testkit.StepResponse(502, "text/html", "<html>bad gateway</html>")}, "upstream_unavailable", ""},
		// A model removed from the server after the session was created.
		{"model gone", testkit.Script{testkit.StepErrorStatus(404, "model 'tiny' not found")}, "upstream_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOpts{})
			s.upstream.Push(tt.script)
			frames := turn(t, s)
			last := frames[len(frames)-1]
			if last.Kind != "generation.failed" {
				t.Fatalf("terminal %s: %s", last.Kind, last.Raw)
			}
			if code := jsonField(t, last.Data, "error.code"); code != tt.code {
				t.Errorf("code %s, want %s: %s", code, tt.code, last.Raw)
			}
			if last.DataText() != tt.wantText || testkit.Assemble(t, frames, genOf(t, last)) != tt.wantText {
				t.Errorf("text %q, want %q", last.DataText(), tt.wantText)
			}
		})
	}
}

// TestUpstreamDown points Parley at a port where nothing listens.
func TestUpstreamDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := newStack(t, stackOpts{ollamaURL: "http://" + addr})
	frames := turn(t, s)
	last := frames[len(frames)-1]
	if last.Kind != "generation.failed" || jsonField(t, last.Data, "error.code") != "upstream_unavailable" {
		t.Fatalf("terminal: %s", last.Raw)
	}
}

// TestSlowFirstToken fails a generation whose first token does not come
// within the first-token timeout, and cancels the request.
func TestSlowFirstToken(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{ollamaConfig: ollama.Config{FirstTokenTimeout: 300 * time.Millisecond}})
	s.upstream.Push(testkit.Script{testkit.StepDelay(time.Minute), testkit.StepContent("late"), testkit.StepDone()})
	frames := turn(t, s)
	last := frames[len(frames)-1]
	if last.Kind != "generation.failed" || jsonField(t, last.Data, "error.code") != "upstream_error" {
		t.Fatalf("terminal: %s", last.Raw)
	}
	s.upstream.WaitCancelled(t, 1)
}

// TestSplitUTF8 streams multi-byte characters cut across network reads
// and records: every delta is whole characters and the text is exact.
func TestSplitUTF8(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	text := "a€😀b"
	s.upstream.Push(testkit.Script{
		testkit.StepContent(text).SplitAt(2, 5),
		testkit.StepContent("ü").SplitEvery(1),
		testkit.StepContent("日本").SplitAt(1, 4),
		testkit.StepDone(),
	})
	frames := turn(t, s)
	last := frames[len(frames)-1]
	want := text + "ü日本"
	if last.Kind != "generation.completed" || last.DataText() != want {
		t.Fatalf("terminal: %s", last.Raw)
	}
	for _, f := range frames {
		if f.Type == "delta" && !utf8.ValidString(f.Text) {
			t.Errorf("delta splits a character: %q", f.Text)
		}
	}
	if got := testkit.Assemble(t, frames, genOf(t, last)); got != want {
		t.Errorf("assembled %q", got)
	}
}

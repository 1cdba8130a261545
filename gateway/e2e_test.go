package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ollama/ollama/api"

	"github.com/parleyhq/parley/internal/testkit"
)

// End-to-end tests over the whole real path: a real WebSocket client, the
// nbio gateway, the actors, JetStream, and a REAL Ollama serving the tiny
// random-weight models of scripts/ollama-test-env.sh. They skip (with the
// message of testkit.RealOllama) when PARLEY_TEST_OLLAMA_HOST is unset.
//
// The models decode greedily, so a prompt always gets the same reply; the
// reply is random bytes (control characters and all), so every text is
// compared byte for byte, usually with what the same Ollama answers to the
// same request made directly.
//
// Only TestE2EStopMidStream is not parallel: it measures how soon the model
// server takes a new request after a stop, and Ollama serves one request per
// model at a time (OLLAMA_NUM_PARALLEL defaults to 1), so it runs before the
// parallel tests start.

// Prompts chosen for what the tiny models do with them (greedy decoding
// makes that fixed; the tests check it where it matters).
const (
	// e2ePrompt gets a 64-token reply from "tiny" with a done record.
	e2ePrompt = "Say hello."
	// e2eLoopPrompt makes "tiny-loop" repeat itself until Ollama ends the
	// stream without a done record.
	e2eLoopPrompt = "Say hello."
	// e2eLongPrompt makes "tiny-long" run to its 4000-token limit.
	e2eLongPrompt = "go"
)

// directReply is what a real Ollama streams for one /api/chat request made
// without Parley.
type directReply struct {
	text    string
	records int
	done    *api.ChatResponse // nil when the stream ended without a done record
}

// directChat sends Parley's request (the same model, messages and streaming,
// no options) straight to Ollama at base and collects the reply.
func directChat(t *testing.T, base, model string, msgs ...api.Message) directReply {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %q: %v", base, err)
	}
	client := api.NewClient(u, &http.Client{Timeout: 3 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stream := true
	var (
		r    directReply
		text strings.Builder
	)
	err = client.Chat(ctx, &api.ChatRequest{Model: model, Messages: msgs, Stream: &stream}, func(cr api.ChatResponse) error {
		r.records++
		text.WriteString(cr.Message.Content)
		if cr.Done {
			d := cr
			r.done = &d
		}
		return nil
	})
	if err != nil {
		t.Fatalf("direct chat with %s: %v", model, err)
	}
	r.text = text.String()
	return r
}

func userMsg(content string) api.Message { return api.Message{Role: "user", Content: content} }

// completedData is the data of a generation.completed event.
type completedData struct {
	Gen        uint64 `json:"gen"`
	Text       string `json:"text"`
	DoneReason string `json:"done_reason"`
	Usage      struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	TTFTMs     *int64 `json:"ttft_ms"`
	DurationMs *int64 `json:"duration_ms"`
}

// failedData is the data of a generation.failed event.
type failedData struct {
	Gen   uint64 `json:"gen"`
	Text  string `json:"text"`
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeData(t *testing.T, f testkit.Frame, v any) {
	t.Helper()
	if err := json.Unmarshal(f.Data, v); err != nil {
		t.Fatalf("data of %s: %v: %s", f.Kind, err, f.Raw)
	}
}

// realTurn sends content on session id and returns the generation's gen,
// the frames up to its terminal event and that event.
func realTurn(t *testing.T, c *testkit.WSClient, id, content string) (uint64, []testkit.Frame, testkit.Frame) {
	t.Helper()
	ack := send(t, c, id, content)
	gen := ack.Seq + 1 // generation.started follows the user message
	frames := c.Terminal(id, gen)
	return gen, frames, frames[len(frames)-1]
}

// checkDeltas fails t unless every delta of gen is non-empty whole UTF-8.
func checkDeltas(t *testing.T, frames []testkit.Frame, gen uint64) int {
	t.Helper()
	n := 0
	for _, f := range frames {
		if f.Type != "delta" || f.Gen != gen {
			continue
		}
		n++
		if f.Text == "" || !utf8.ValidString(f.Text) {
			t.Errorf("delta at offset %d is empty or not whole UTF-8: %q", f.Offset, f.Text)
		}
	}
	return n
}

// TestE2EChatTurn runs a full turn with "tiny": the deltas assemble to
// exactly the completed event's text, which is what Ollama itself answers
// to the same request, with its done_reason and token counts; and the same
// prompt in another session gets the same reply.
func TestE2EChatTurn(t *testing.T) {
	base := testkit.RealOllama(t)
	t.Parallel()
	s := newStack(t, stackOpts{ollamaURL: base, model: testkit.TinyModel})
	c := s.dial("")

	replies := make([]string, 2)
	for i := range replies {
		id := create(t, c, nil)
		gen, frames, last := realTurn(t, c, id, e2ePrompt)
		if last.Kind != "generation.completed" {
			t.Fatalf("turn %d: terminal %s: %s", i, last.Kind, last.Raw)
		}
		var d completedData
		decodeData(t, last, &d)
		assembled := testkit.Assemble(t, frames, gen)
		n := checkDeltas(t, frames, gen)
		if d.Text == "" {
			t.Fatalf("turn %d: empty reply: %s", i, last.Raw)
		}
		if assembled != d.Text {
			t.Fatalf("turn %d: %d deltas assemble to\n%q\nbut the completed event has\n%q", i, n, assembled, d.Text)
		}
		if d.Gen != gen || d.DoneReason == "" || d.Usage.CompletionTokens <= 0 || d.Usage.PromptTokens <= 0 {
			t.Errorf("turn %d: completed data gen=%d (want %d) done_reason=%q usage=%+v", i, d.Gen, gen, d.DoneReason, d.Usage)
		}
		if d.TTFTMs == nil || d.DurationMs == nil || *d.TTFTMs < 1 || *d.DurationMs < *d.TTFTMs {
			t.Errorf("turn %d: ttft_ms %v, duration_ms %v: %s", i, d.TTFTMs, d.DurationMs, last.Raw)
		}
		replies[i] = d.Text
		t.Logf("turn %d: %d deltas, %d bytes, done_reason=%s, usage=%+v", i, n, len(d.Text), d.DoneReason, d.Usage)

		if i == 0 {
			// What Ollama answers without Parley in between.
			direct := directChat(t, base, testkit.TinyModel, userMsg(e2ePrompt))
			if direct.done == nil {
				t.Fatalf("direct request ended without a done record")
			}
			if direct.text != d.Text {
				t.Errorf("Parley's reply differs from Ollama's own:\nparley: %q\nollama: %q", d.Text, direct.text)
			}
			if d.DoneReason != direct.done.DoneReason ||
				d.Usage.CompletionTokens != direct.done.EvalCount ||
				d.Usage.PromptTokens != direct.done.PromptEvalCount {
				t.Errorf("done_reason %q usage %+v; Ollama said done_reason %q eval_count %d prompt_eval_count %d",
					d.DoneReason, d.Usage, direct.done.DoneReason, direct.done.EvalCount, direct.done.PromptEvalCount)
			}
		}
	}
	if replies[0] != replies[1] {
		t.Errorf("the same prompt got different replies with greedy decoding:\nfirst:  %q\nsecond: %q", replies[0], replies[1])
	}
}

// TestE2EStopMidStream stops a long reply of "tiny-long" mid-stream: the
// generation ends as stopped, promptly, with exactly the text the client
// assembled; the upstream request is cancelled, which shows in the next
// send on the session getting its first token at once instead of waiting
// behind the rest of the 4000-token reply; and that send completes.
func TestE2EStopMidStream(t *testing.T) {
	base := testkit.RealOllama(t)
	s := newStack(t, stackOpts{ollamaURL: base, model: testkit.TinyModel})
	c := s.dial("")
	id := create(t, c, map[string]any{"model": testkit.TinyLongModel})

	ack := send(t, c, id, e2eLongPrompt)
	gen := ack.Seq + 1
	const wantDeltas = 5
	var first, nth time.Time
	seen := 0
	frames := c.Until(func(f testkit.Frame) bool {
		if f.Type == "event" && f.Session == id && testkit.IsTerminal(f.Kind) {
			t.Fatalf("generation ended before the stop: %s", f.Raw)
		}
		if f.Type != "delta" || f.Gen != gen {
			return false
		}
		seen++
		if seen == 1 {
			first = time.Now()
		}
		nth = time.Now()
		return seen == wantDeltas
	})
	pace := nth.Sub(first) // time the model took for deltas 2..wantDeltas

	stopAt := time.Now()
	stopAck, more := stopReply(t, c, id, gen)
	stopLatency := time.Since(stopAt)
	frames = append(frames, more...)
	last := frames[len(frames)-1]
	if last.Kind != "generation.stopped" {
		t.Fatalf("terminal %s: %s", last.Kind, last.Raw)
	}
	assembled := testkit.Assemble(t, frames, gen)
	if last.DataText() == "" || last.DataText() != assembled {
		t.Fatalf("stopped text differs from the assembled deltas:\nstopped:   %q\nassembled: %q", last.DataText(), assembled)
	}
	checkDeltas(t, frames, gen)
	// The stop is handled by the session actor at once; the model would
	// have gone on for thousands of tokens.
	if stopLatency > 5*time.Second {
		t.Errorf("stopped event %v after the stop command", stopLatency)
	}
	if !*stopAck.Stopped {
		t.Errorf("stop ack: %s", stopAck.Raw)
	}
	t.Logf("stopped after %d bytes, %v after the stop command (5 deltas took %v)", len(assembled), stopLatency, pace)

	// The next reply's first token. Had the stopped request gone on in
	// Ollama, this one would wait in its queue for the rest of a
	// 4000-token reply, hundreds of times the pace of those deltas.
	sentAt := time.Now()
	ack2 := send(t, c, id, "again")
	gen2 := ack2.Seq + 1
	after := c.Until(func(f testkit.Frame) bool {
		if f.Type == "event" && f.Session == id && testkit.IsTerminal(f.Kind) && genOf(t, f) == gen2 {
			t.Fatalf("second generation ended without a delta: %s", f.Raw)
		}
		return f.Type == "delta" && f.Gen == gen2
	})
	wait := time.Since(sentAt)
	limit := max(time.Second, 20*pace)
	if wait > limit {
		t.Errorf("first token of the next reply after %v (limit %v): the stopped request still holds the model server?", wait, limit)
	}
	t.Logf("next reply's first delta %v after its send (limit %v)", wait, limit)

	rest := c.Terminal(id, gen2)
	after = append(after, rest...)
	for _, f := range after {
		if f.Type == "delta" && f.Gen == gen {
			t.Errorf("delta of the stopped generation after its stopped event: %s", f.Raw)
		}
	}
	last2 := after[len(after)-1]
	if last2.Kind != "generation.completed" {
		t.Fatalf("second terminal %s: %s", last2.Kind, last2.Raw)
	}
	if got := testkit.Assemble(t, after, gen2); got == "" || got != last2.DataText() {
		t.Errorf("second reply: assembled %d bytes, completed text %d bytes; equal: %v", len(got), len(last2.DataText()), got == last2.DataText())
	}
	t.Logf("second reply completed: %d bytes in %v", len(last2.DataText()), time.Since(sentAt))
}

// TestE2ELoopWithoutDone uses "tiny-loop", for which Ollama ends the stream
// without a done record: the generation fails with upstream_error, keeps
// the text that was streamed, and is never recorded as completed.
func TestE2ELoopWithoutDone(t *testing.T) {
	base := testkit.RealOllama(t)
	t.Parallel()
	direct := directChat(t, base, testkit.TinyLoopModel, userMsg(e2eLoopPrompt))
	if direct.done != nil || direct.text == "" {
		t.Fatalf("precondition: tiny-loop should end %q without a done record after some text; got %d records, done %+v, text %q",
			e2eLoopPrompt, direct.records, direct.done, direct.text)
	}

	s := newStack(t, stackOpts{ollamaURL: base, model: testkit.TinyModel})
	c := s.dial("")
	id := create(t, c, map[string]any{"model": testkit.TinyLoopModel})
	gen, frames, last := realTurn(t, c, id, e2eLoopPrompt)
	if last.Kind != "generation.failed" {
		t.Fatalf("terminal %s: %s", last.Kind, last.Raw)
	}
	var d failedData
	decodeData(t, last, &d)
	if d.Error.Code != "upstream_error" || !strings.Contains(d.Error.Message, "done record") {
		t.Errorf("error %+v, want upstream_error about the missing done record", d.Error)
	}
	assembled := testkit.Assemble(t, frames, gen)
	checkDeltas(t, frames, gen)
	if d.Text != assembled || d.Text != direct.text {
		t.Errorf("failed text, deltas and Ollama's own stream differ:\nfailed:    %q\nassembled: %q\nollama:    %q", d.Text, assembled, direct.text)
	}

	// The log holds the failure and nothing else for that generation.
	c2 := s.dial("")
	r, before := c2.Reply(c2.Command(map[string]any{"type": "attach", "session": id}))
	if r.Type != "ack" {
		t.Fatalf("attach: %s", r.Raw)
	}
	hist := append(before, c2.Until(func(f testkit.Frame) bool { return f.Kind == "generation.failed" })...)
	for _, f := range hist {
		if f.Kind == "generation.completed" || f.Kind == "generation.stopped" || f.Kind == "generation.interrupted" {
			t.Errorf("history has %s: %s", f.Kind, f.Raw)
		}
	}
	status, body := s.do("GET", "/v1/sessions/"+id, "", nil)
	if status != 200 || jsonField(t, body, "generating") != "false" {
		t.Fatalf("detail: %d %s", status, body)
	}
	var detail struct {
		Messages []struct{ Role, Content, State string }
	}
	if err := json.Unmarshal(body, &detail); err != nil {
		t.Fatal(err)
	}
	if len(detail.Messages) != 2 || detail.Messages[1].State != "failed" || detail.Messages[1].Content != direct.text {
		t.Errorf("detail messages: %s", body)
	}
}

// TestE2EUnknownModel asks the real Ollama for a model it does not have:
// create is refused with a message naming the model, before anything is
// appended, over WebSocket and HTTP; GET /v1/models lists what it has.
func TestE2EUnknownModel(t *testing.T) {
	base := testkit.RealOllama(t)
	t.Parallel()
	s := newStack(t, stackOpts{ollamaURL: base, model: testkit.TinyModel})
	c := s.dial("")
	const model = "no-such-model"
	r, _ := c.Reply(c.Command(map[string]any{"type": "create", "model": model}))
	if r.Type != "error" || r.Code != "bad_request" || !strings.Contains(r.Message, `"`+model+`"`) || r.Session != "" {
		t.Errorf("create over WebSocket: %s, want error bad_request naming %s", r.Raw, model)
	}
	status, body := s.do("POST", "/v1/sessions", "", map[string]any{"model": model})
	if status != http.StatusBadRequest || jsonField(t, body, "error.code") != "bad_request" {
		t.Errorf("create over HTTP: %d %s", status, body)
	}
	if status, body := s.do("GET", "/v1/sessions", "", nil); status != 200 || strings.Contains(string(body), `"id"`) {
		t.Errorf("a refused create left a session: %d %s", status, body)
	}
	status, body = s.do("GET", "/v1/models", "", nil)
	if status != 200 || !strings.Contains(string(body), `"name":"`+testkit.TinyModel+`:latest"`) || jsonField(t, body, "provider") != "ollama" {
		t.Errorf("models: %d %s", status, body)
	}
	// A model it has, named without its tag, is fine.
	create(t, c, map[string]any{"model": testkit.TinyModel})
}

// TestE2EAttachAfterTurn reloads a finished session on a second WebSocket:
// attach sends the history, whose completed event is byte for byte the one
// the first connection got live, and no deltas; a cursor sends only what
// follows it; the HTTP detail has the same reply.
func TestE2EAttachAfterTurn(t *testing.T) {
	base := testkit.RealOllama(t)
	t.Parallel()
	s := newStack(t, stackOpts{ollamaURL: base, model: testkit.TinyModel})
	c := s.dial("")
	id := create(t, c, nil)
	gen, _, live := realTurn(t, c, id, e2ePrompt)
	if live.Kind != "generation.completed" || live.DataText() == "" {
		t.Fatalf("terminal: %s", live.Raw)
	}
	c.Close()

	attach := func(cursor string) []testkit.Frame {
		t.Helper()
		c2 := s.dial("")
		cmd := map[string]any{"type": "attach", "session": id}
		if cursor != "" {
			cmd["after"] = cursor
		}
		r, before := c2.Reply(c2.Command(cmd))
		if r.Type != "ack" {
			t.Fatalf("attach %q: %s", cursor, r.Raw)
		}
		hist := append(before, c2.Until(func(f testkit.Frame) bool {
			return f.Type == "event" && testkit.IsTerminal(f.Kind)
		})...)
		// Ping, so anything sent after the history would show up before
		// the pong.
		c2.Send(map[string]any{"type": "ping"})
		hist = append(hist, c2.Until(func(f testkit.Frame) bool { return f.Type == "pong" })...)
		var out []testkit.Frame
		for _, f := range hist {
			switch f.Type {
			case "event", "delta":
				out = append(out, f)
			}
		}
		return out
	}
	kinds := func(fs []testkit.Frame) []string {
		var ks []string
		for _, f := range fs {
			ks = append(ks, f.Type+":"+f.Kind)
		}
		return ks
	}

	hist := attach("")
	want := []string{"event:session.created", "event:message.user", "event:generation.started", "event:generation.completed"}
	if got := kinds(hist); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("history %v, want %v", got, want)
	}
	for i := 1; i < len(hist); i++ {
		if hist[i].Seq <= hist[i-1].Seq {
			t.Errorf("seqs not increasing: %d then %d", hist[i-1].Seq, hist[i].Seq)
		}
	}
	if hist[2].Seq != gen {
		t.Errorf("generation.started seq %d, want gen %d", hist[2].Seq, gen)
	}
	got := hist[3]
	if got.Seq != live.Seq || !bytes.Equal(got.Data, live.Data) {
		t.Errorf("completed event on attach differs from the live one:\nattach: %s\nlive:   %s", got.Raw, live.Raw)
	}

	// After the user message: only the generation's events.
	tail := attach(strconv.FormatUint(hist[1].Seq, 10))
	if k := kinds(tail); strings.Join(k, " ") != "event:generation.started event:generation.completed" || !bytes.Equal(tail[1].Data, live.Data) {
		t.Errorf("attach after seq %d: %v", hist[1].Seq, k)
	}

	status, body := s.do("GET", "/v1/sessions/"+id, "", nil)
	var detail struct {
		Messages []struct {
			Seq                  uint64
			Role, Content, State string
		}
	}
	if err := json.Unmarshal(body, &detail); status != 200 || err != nil {
		t.Fatalf("detail: %d %s", status, body)
	}
	if len(detail.Messages) != 2 || detail.Messages[1].Seq != gen || detail.Messages[1].State != "completed" ||
		detail.Messages[1].Content != live.DataText() {
		t.Errorf("detail messages: %s", body)
	}
}

package testkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// rawChat posts a streaming chat request for model and returns the
// response status, content type, body and the body read error.
func rawChat(t *testing.T, ctx context.Context, base, model string) (int, string, []byte, error) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"stream":true}`, model)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/chat", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/chat: %v", err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b, rerr
}

// shape renders a JSON value with its keys in wire order and every scalar
// replaced by its type, so records can be compared with the real server's.
func shape(t *testing.T, line []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	var b strings.Builder
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				b.WriteByte('{')
				for i := 0; dec.More(); i++ {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s:", k)
					if err := walk(); err != nil {
						return err
					}
				}
				dec.Token()
				b.WriteByte('}')
			case '[':
				b.WriteByte('[')
				for dec.More() {
					if err := walk(); err != nil {
						return err
					}
				}
				dec.Token()
				b.WriteByte(']')
			}
		case string:
			b.WriteString("s")
		case float64:
			b.WriteString("n")
		case bool:
			b.WriteString("b")
		case nil:
			b.WriteString("null")
		}
		return nil
	}
	if err := walk(); err != nil {
		t.Fatalf("shape of %q: %v", line, err)
	}
	return b.String()
}

const (
	contentShape = `{model:s,created_at:s,message:{role:s,content:s},done:b}`
	doneShape    = `{model:s,created_at:s,message:{role:s,content:s},done:b,done_reason:s,total_duration:n,load_duration:n,prompt_eval_count:n,prompt_eval_duration:n,eval_count:n,eval_duration:n}`
)

var createdAtRE = regexp.MustCompile(`"created_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"`)

func TestScriptedOllamaWireFormat(t *testing.T) {
	t.Parallel()
	s := NewScriptedOllama(t, ScriptedConfig{Models: []string{"tiny"}})
	s.Push(Script{StepContent("a<b"), StepThinking("hm"), StepContent("é"), StepDoneWith(DoneStats{Reason: "length", PromptEvalCount: 7, EvalCount: 3})})

	status, ct, body, err := rawChat(t, context.Background(), s.URL(), "tiny")
	if err != nil || status != 200 || ct != "application/x-ndjson" {
		t.Fatalf("status %d, content type %q, read error %v", status, ct, err)
	}
	lines := strings.SplitAfter(string(body), "\n")
	if lines[len(lines)-1] != "" {
		t.Fatalf("body does not end in a newline: %q", body)
	}
	lines = lines[:len(lines)-1]
	if len(lines) != 4 {
		t.Fatalf("want 4 records, got %d: %q", len(lines), body)
	}
	for i, want := range []string{
		`"message":{"role":"assistant","content":"a\u003cb"},"done":false}` + "\n",
		`"message":{"role":"assistant","content":"","thinking":"hm"},"done":false}` + "\n",
		`"message":{"role":"assistant","content":"é"},"done":false}` + "\n",
		`"message":{"role":"assistant","content":""},"done":true,"done_reason":"length","total_duration":`,
	} {
		if !strings.HasPrefix(lines[i], `{"model":"tiny","created_at":"`) || !createdAtRE.MatchString(lines[i]) || !strings.Contains(lines[i], want) {
			t.Errorf("record %d = %q, want it to hold %q", i, lines[i], want)
		}
	}
	if got := shape(t, []byte(lines[0])); got != contentShape {
		t.Errorf("content record shape %s, want %s", got, contentShape)
	}
	if got := shape(t, []byte(lines[3])); got != doneShape {
		t.Errorf("done record shape %s, want %s", got, doneShape)
	}
	if !strings.Contains(lines[3], `"prompt_eval_count":7,`) || !strings.Contains(lines[3], `"eval_count":3,`) {
		t.Errorf("done record %q lacks the given counts", lines[3])
	}

	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Chat.Model != "tiny" || len(reqs[0].Chat.Messages) != 1 || reqs[0].Chat.Messages[0].Content != "hi" {
		t.Fatalf("recorded requests %+v", reqs)
	}
	select {
	case <-reqs[0].Cancelled():
		t.Error("a completed request was recorded as cancelled")
	default:
	}
}

func TestScriptedOllamaErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		model      string
		script     Script
		wantStatus int
		wantCT     string
		wantBody   string // as checkBody takes it
		wantCut    bool
	}{
		{
			name: "model not found", model: "nope",
			wantStatus: 404, wantCT: "application/json; charset=utf-8",
			wantBody: `{"error":"model 'nope' not found"}`,
		},
		{
			name: "error before output", model: "tiny",
			script:     Script{StepDelay(time.Millisecond), StepError("boom")},
			wantStatus: 500, wantCT: "application/json", wantBody: `{"error":"boom"}`,
		},
		{
			name: "overloaded", model: "tiny",
			script:     Script{StepErrorStatus(503, "server busy, please try again.  maximum pending requests exceeded")},
			wantStatus: 503, wantCT: "application/json",
			wantBody: `{"error":"server busy, please try again.  maximum pending requests exceeded"}`,
		},
		{
			name: "error mid-stream", model: "tiny",
			script:     Script{StepContent("par"), StepError("model crashed")},
			wantStatus: 200, wantCT: "application/x-ndjson",
			wantBody: `…"content":"par"},"done":false}` + "\n" + `{"error":"model crashed"}` + "\n",
		},
		{
			name: "end without done", model: "tiny",
			script:     Script{StepContent("x"), StepEnd(), StepDone()},
			wantStatus: 200, wantCT: "application/x-ndjson",
			wantBody: `…"content":"x"},"done":false}` + "\n",
		},
		{
			name: "cut", model: "tiny",
			script:     Script{StepContent("x"), StepCut()},
			wantStatus: 200, wantCT: "application/x-ndjson",
			wantBody: `…"content":"x"},"done":false}` + "\n", wantCut: true,
		},
		{
			name: "proxy page", model: "tiny",
			script:     Script{StepResponse(502, "text/html", "<html>bad gateway</html>")},
			wantStatus: 502, wantCT: "text/html", wantBody: "<html>bad gateway</html>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewScriptedOllama(t, ScriptedConfig{Models: []string{"tiny"}})
			if tt.script != nil {
				s.Push(tt.script)
			}
			status, ct, body, err := rawChat(t, context.Background(), s.URL(), tt.model)
			if status != tt.wantStatus || ct != tt.wantCT {
				t.Errorf("status %d %q, want %d %q", status, ct, tt.wantStatus, tt.wantCT)
			}
			checkBody(t, string(body), tt.wantBody)
			if gotCut := errors.Is(err, io.ErrUnexpectedEOF); gotCut != tt.wantCut {
				t.Errorf("body read error %v, want cut=%v", err, tt.wantCut)
			}
		})
	}
}

func TestScriptedOllamaVersionAndTags(t *testing.T) {
	t.Parallel()
	s := NewScriptedOllama(t, ScriptedConfig{Models: []string{"tiny", "tiny-long:latest"}})
	get := func(path string) (int, string, string) {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if st, ct, b := get("/api/version"); st != 200 || ct != "application/json; charset=utf-8" || b != `{"version":"0.17.4"}` {
		t.Errorf("/api/version: %d %q %q", st, ct, b)
	}
	st, _, b := get("/api/tags")
	var tags struct {
		Models []struct{ Name, Model string } `json:"models"`
	}
	if err := json.Unmarshal([]byte(b), &tags); st != 200 || err != nil {
		t.Fatalf("/api/tags: %d %q %v", st, b, err)
	}
	if len(tags.Models) != 2 || tags.Models[0].Name != "tiny:latest" || tags.Models[1].Model != "tiny-long:latest" {
		t.Errorf("/api/tags models %+v", tags.Models)
	}
	if st, _, _ := get("/api/nothing"); st != 404 {
		t.Errorf("unknown path: %d", st)
	}
}

// TestScriptedOllamaSplitWrites checks that SplitAt and SplitEvery put the
// pieces of one record into separate reads.
func TestScriptedOllamaSplitWrites(t *testing.T) {
	t.Parallel()
	s := NewScriptedOllama(t, ScriptedConfig{})
	text := "a€😀b" // 1+3+4+1 bytes
	s.Push(Script{
		StepContent(text).SplitAt(2, 5).Pause(20 * time.Millisecond), // inside € and inside 😀
		StepContent(text).SplitEvery(1).Pause(0),
		StepDone(),
	})
	reads, all := readEach(post(t, s.URL()+"/api/chat", `{"model":"m","messages":[]}`).Body)
	// The first record arrives in three reads ending right after the cut
	// points (the pause is long enough for each to be read on its own).
	if len(reads) < 3 || !strings.HasSuffix(reads[0], "\"content\":\"a\xe2") || reads[1] != "\x82\xac\xf0" || !strings.HasPrefix(reads[2], "\x9f\x98\x80b\"}") {
		t.Errorf("reads of the first record: %q", reads[:min(len(reads), 3)])
	}
	sc := bufio.NewScanner(bytes.NewReader(all))
	var got []string
	for sc.Scan() {
		var r struct {
			Message struct{ Content string } `json:"message"`
			Done    bool                     `json:"done"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record %q: %v", sc.Bytes(), err)
		}
		got = append(got, r.Message.Content)
	}
	if strings.Join(got, "|") != text+"|"+text+"|" {
		t.Errorf("reassembled contents %q", got)
	}
}

// TestScriptedOllamaCancel checks that a client that goes away while the
// script holds, blocks or delays is recorded as having cancelled.
func TestScriptedOllamaCancel(t *testing.T) {
	testCancel(t, func(t *testing.T, script Script) cancelCase {
		s := NewScriptedOllama(t, ScriptedConfig{})
		s.Push(script)
		return cancelCase{s, func() recordedRequest { return s.Requests()[0] }, func(ctx context.Context) error {
			_, _, _, err := rawChat(t, ctx, s.URL(), "m")
			return err
		}}
	})
}

// TestScriptedOllamaHold checks that Reached fires after the output before
// the hold was flushed, and that Release lets the script finish.
func TestScriptedOllamaHold(t *testing.T) {
	t.Parallel()
	s := NewScriptedOllama(t, ScriptedConfig{})
	hold := NewHold()
	s.Push(Script{StepContent("before"), hold.Step(), StepContent("after"), StepDone()})
	resp := post(t, s.URL()+"/api/chat", `{"model":"m"}`)
	<-hold.Reached()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, `"content":"before"`) {
		t.Fatalf("first line %q, %v", line, err)
	}
	hold.Release()
	hold.Release() // safe twice
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), `"content":"after"`) || !strings.Contains(string(rest), `"done":true`) {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// TestScriptedOllamaConcurrent checks that concurrent requests each take
// one pushed script, then fall back to ScriptedConfig.Script.
func TestScriptedOllamaConcurrent(t *testing.T) {
	t.Parallel()
	s := NewScriptedOllama(t, ScriptedConfig{Script: func(r *ScriptedRequest) Script {
		return echoScript(r.Chat.Messages[0].Content)
	}})
	const n = 8
	testConcurrent(t, n, s.Push, func() string {
		_, _, b, _ := rawChat(t, context.Background(), s.URL(), "m")
		return string(b)
	})
	if got := len(s.WaitRequests(t, n+2)); got != n+2 {
		t.Errorf("%d requests recorded", got)
	}
}

func TestTextReplyChunks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text string
		size int
		want []string
	}{
		{"hello", 2, []string{"he", "ll", "o"}},
		{"hello", 0, []string{"hello"}},
		{"héllo", 2, []string{"h", "é", "ll", "o"}},
		{"😀😀", 1, []string{"😀", "😀"}},
		{"", 3, nil},
	} {
		if got := chunkText(tt.text, tt.size); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("chunkText(%q, %d) = %q, want %q", tt.text, tt.size, got, tt.want)
		}
	}
}

// TestScriptedOllamaMatchesRealOllama compares the scripted server's bytes
// with a real Ollama v0.17.4's (skipped without one): headers, the key
// order of records, and the answer for a missing model.
func TestScriptedOllamaMatchesRealOllama(t *testing.T) {
	base := RealOllama(t)
	t.Parallel()
	s := NewScriptedOllama(t, ScriptedConfig{Models: []string{TinyModel}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type answer struct {
		status int
		ct     string
		body   []byte
	}
	ask := func(base, model string) answer {
		st, ct, b, err := rawChat(t, ctx, base, model)
		if err != nil {
			t.Fatalf("%s: read body: %v", base, err)
		}
		return answer{st, ct, b}
	}
	real, fake := ask(base, TinyModel), ask(s.URL(), TinyModel)
	if real.status != fake.status || real.ct != fake.ct {
		t.Errorf("real %d %q, scripted %d %q", real.status, real.ct, fake.status, fake.ct)
	}
	recordShapes := func(body []byte) (first, last string) {
		lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
		return shape(t, lines[0]), shape(t, lines[len(lines)-1])
	}
	rf, rl := recordShapes(real.body)
	ff, fl := recordShapes(fake.body)
	if rf != ff || rl != fl {
		t.Errorf("record shapes differ:\nreal:     %s\n          %s\nscripted: %s\n          %s", rf, rl, ff, fl)
	}
	if !createdAtRE.Match(real.body) {
		t.Errorf("real created_at format differs from the scripted one: %.200s", real.body)
	}

	real, fake = ask(base, "no-such-model"), ask(s.URL(), "no-such-model")
	if real.status != fake.status || real.ct != fake.ct || !bytes.Equal(real.body, fake.body) {
		t.Errorf("missing model: real %d %q %q, scripted %d %q %q", real.status, real.ct, real.body, fake.status, fake.ct, fake.body)
	}
}

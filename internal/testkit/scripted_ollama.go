package testkit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ollama/ollama/api"
)

// ScriptedOllamaVersion is the Ollama version whose wire format
// ScriptedOllama copies, and what its /api/version reports by default.
const ScriptedOllamaVersion = "0.17.4"

// DefaultScriptedReply is the reply text of a request for which no script
// was pushed and ScriptedConfig.Script is nil.
const DefaultScriptedReply = "Hello from the scripted Ollama."

// ScriptedConfig configures a ScriptedOllama.
type ScriptedConfig struct {
	// Models are the models the server has, as for `ollama list` ("tiny"
	// stands for "tiny:latest"; matching ignores case as Ollama does). A
	// chat request for another model gets Ollama's 404 "model 'x' not
	// found". Zero value means every model name is accepted and /api/tags
	// lists none.
	Models []string
	// Version is what /api/version reports. Zero value means
	// ScriptedOllamaVersion.
	Version string
	// ContextLength is the trained context window /api/show reports
	// (llama.context_length). Zero value means 2048, as the tiny model.
	ContextLength int
	// NumCtx, when not zero, is a num_ctx parameter /api/show reports, as
	// a Modelfile's PARAMETER num_ctx does.
	NumCtx int
	// Script chooses the script of a request for which none was pushed
	// with Push. It runs on the request's goroutine. Zero value means
	// TextReply(DefaultScriptedReply, 8).
	Script func(*ScriptedRequest) Script
}

// ScriptedOllama is a real HTTP server on 127.0.0.1 that answers like
// Ollama v0.17.4 (/api/chat, /api/version, /api/tags), byte for byte as far
// as the client can see, with each chat reply played from a Script. It
// records every chat request and whether the client cancelled it.
//
// All methods are safe for concurrent use. Requests are served
// concurrently; each takes the next pushed script in order.
type ScriptedOllama struct {
	scriptedCore[ScriptedRequest]
	cfg     ScriptedConfig
	started time.Time
}

// NewScriptedOllama starts a ScriptedOllama that is closed when tb's test
// ends.
func NewScriptedOllama(tb testing.TB, cfg ScriptedConfig) *ScriptedOllama {
	tb.Helper()
	if cfg.Version == "" {
		cfg.Version = ScriptedOllamaVersion
	}
	s := &ScriptedOllama{cfg: cfg, started: time.Now().UTC()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat", s.handleChat)
	mux.HandleFunc("GET /api/version", s.handleVersion)
	mux.HandleFunc("HEAD /api/version", s.handleVersion)
	mux.HandleFunc("GET /api/tags", s.handleTags)
	mux.HandleFunc("HEAD /api/tags", s.handleTags)
	mux.HandleFunc("POST /api/show", s.handleShow)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeGinNotFound(w) })
	s.start(tb, "scripted ollama", cfg.Script, mux)
	return s
}

// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
func (s *ScriptedOllama) URL() string { return s.srv.URL }

// Requests returns the chat requests received so far, in arrival order.
func (s *ScriptedOllama) Requests() []*ScriptedRequest { return s.requests() }

// WaitRequests waits until at least n chat requests have arrived and
// returns them. It fails tb after 10 s; call it from the test goroutine.
func (s *ScriptedOllama) WaitRequests(tb testing.TB, n int) []*ScriptedRequest {
	tb.Helper()
	return s.waitRequests(tb, n)
}

// ScriptedRequest is one chat request as the server received it. Its
// exported fields are set before it becomes visible and never change.
type ScriptedRequest struct {
	Index      int             // 0-based arrival order
	Chat       api.ChatRequest // the decoded body
	Body       []byte          // the raw body
	Header     http.Header
	ReceivedAt time.Time

	requestState // Cancelled, CancelledAt, Finished
}

// Script is the reply to one chat request: steps played in order. A script
// that ends without StepDone, StepError, StepCut or StepEnd ends the stream
// as StepEnd does (no done record), which is what a real Ollama does when a
// model loops.
type Script []Step

type stepKind int

const (
	kindContent stepKind = iota
	kindThinking
	kindRaw
	kindDelay
	kindError
	kindResponse
	kindCut
	kindEnd
	kindDone
	kindHold
	kindBlock
)

// Step is one step of a Script. Build it with the Step… functions.
type Step struct {
	kind        stepKind
	text        string
	status      int
	contentType string
	raw         []byte
	d           time.Duration
	hold        *Hold
	stats       DoneStats
	splitAt     []int
	splitEvery  int
	pause       time.Duration
}

// DoneStats fills the done record.
type DoneStats struct {
	// Reason is done_reason. Zero value means "stop".
	Reason string
	// PromptEvalCount is prompt_eval_count. Zero value means the byte
	// count of the request's message contents (the test models'
	// tokenizer is byte-level), at least 1.
	PromptEvalCount int
	// EvalCount is eval_count. Zero value means the number of content and
	// thinking records sent, at least 1.
	EvalCount int
}

// StepContent sends a record whose message content is text.
func StepContent(text string) Step { return Step{kind: kindContent, text: text} }

// StepThinking sends a record whose message thinking is text (and content
// is empty), as Ollama does for a thinking model.
func StepThinking(text string) Step { return Step{kind: kindThinking, text: text} }

// StepRaw writes b as it is into the 200 NDJSON response, for malformed or
// hand-made records. Include the trailing newline yourself.
func StepRaw(b []byte) Step { return Step{kind: kindRaw, raw: b} }

// StepDelay waits d (less if the client cancels).
func StepDelay(d time.Duration) Step { return Step{kind: kindDelay, d: d} }

// StepError fails the request as Ollama does when a model fails: before
// any output a 500 with {"error":msg}; after output an {"error":msg} line
// on the 200 response. The response ends there.
func StepError(msg string) Step { return StepErrorStatus(http.StatusInternalServerError, msg) }

// StepErrorStatus is StepError with the status used before any output.
func StepErrorStatus(status int, msg string) Step {
	return Step{kind: kindError, status: status, text: msg}
}

// StepResponse answers with a whole response that is not Ollama's, e.g. a
// proxy's 502 page or an empty 503; it must come before any output.
func StepResponse(status int, contentType, body string) Step {
	return Step{kind: kindResponse, status: status, contentType: contentType, text: body}
}

// StepCut hijacks the connection and closes it: the client sees the
// stream break with no done record (and no chunked terminator).
func StepCut() Step { return Step{kind: kindCut} }

// StepEnd ends the response cleanly without a done record, as Ollama
// v0.17.4 does when a model repeats itself.
func StepEnd() Step { return Step{kind: kindEnd} }

// StepDone sends the done record with done_reason "stop" and ends the
// response.
func StepDone() Step { return Step{kind: kindDone} }

// StepDoneWith sends the done record with the given stats.
func StepDoneWith(stats DoneStats) Step { return Step{kind: kindDone, stats: stats} }

// StepBlock waits until the client cancels the request (or the server
// closes), then ends it.
func StepBlock() Step { return Step{kind: kindBlock} }

// SplitAt writes the step's record in parts cut at the given byte offsets,
// each part flushed on its own with a short pause between them, so that a
// record, or a UTF-8 character inside it, arrives across several reads.
// For StepContent and StepThinking the offsets count from the start of the
// text's JSON encoding inside the record (for text without characters JSON
// escapes, i.e. `"`, `\`, `<`, `>`, `&` and control characters, that is the
// byte offset into the text); for other steps from the start of what the
// step writes. Offsets out of range are ignored.
func (st Step) SplitAt(offsets ...int) Step {
	st.splitAt = append([]int(nil), offsets...)
	return st
}

// SplitEvery writes the step's record in flushed parts of n bytes each.
func (st Step) SplitEvery(n int) Step {
	st.splitEvery = n
	return st
}

// Pause sets the pause between the parts of a split record. Zero value
// means 1 ms.
func (st Step) Pause(d time.Duration) Step {
	st.pause = d
	return st
}

// Hold is a point in a script where the reply waits for the test: the test
// learns that the stream got there (Reached) and lets it go on (Release).
// A Hold may appear in several scripts; Reached fires on the first arrival.
type Hold struct {
	reached, release         chan struct{}
	reachedOnce, releaseOnce sync.Once
}

// NewHold returns a Hold that is neither reached nor released.
func NewHold() *Hold {
	return &Hold{reached: make(chan struct{}), release: make(chan struct{})}
}

// Step returns the script step that waits at this Hold. Everything before
// it has been flushed to the client when Reached fires.
func (h *Hold) Step() Step { return Step{kind: kindHold, hold: h} }

// Reached is closed when a reply arrives at the Hold.
func (h *Hold) Reached() <-chan struct{} { return h.reached }

// Release lets every reply waiting at the Hold, and every later one, go
// on. It is safe to call more than once.
func (h *Hold) Release() { h.releaseOnce.Do(func() { close(h.release) }) }

// TextReply is a script that streams text in records of at most chunkSize
// bytes (never splitting a character; a character longer than chunkSize
// gets a record of its own), then the done record. chunkSize <= 0 sends the
// text in one record.
func TextReply(text string, chunkSize int) Script {
	var sc Script
	for _, piece := range chunkText(text, chunkSize) {
		sc = append(sc, StepContent(piece))
	}
	return append(sc, StepDone())
}

// TokenReply is a script that streams each piece as one record with gap
// between records (none if gap is 0), then the done record.
func TokenReply(gap time.Duration, pieces ...string) Script {
	sc := make(Script, 0, 2*len(pieces)+1)
	for i, p := range pieces {
		if i > 0 && gap > 0 {
			sc = append(sc, StepDelay(gap))
		}
		sc = append(sc, StepContent(p))
	}
	return append(sc, StepDone())
}

func chunkText(text string, size int) []string {
	if text == "" {
		return nil
	}
	if size <= 0 {
		return []string{text}
	}
	var out []string
	for len(text) > 0 {
		n := 0
		for n < len(text) {
			_, w := utf8.DecodeRuneInString(text[n:])
			if n > 0 && n+w > size {
				break
			}
			n += w
		}
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

// --- handlers ---

func (s *ScriptedOllama) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", map[string]any{"version": s.cfg.Version})
}

func (s *ScriptedOllama) handleTags(w http.ResponseWriter, r *http.Request) {
	models := []api.ListModelResponse{}
	for _, m := range s.cfg.Models {
		name := fullModelName(m)
		sum := sha256.Sum256([]byte(name))
		models = append(models, api.ListModelResponse{
			Name:       name,
			Model:      name,
			ModifiedAt: s.started,
			Size:       470_000,
			Digest:     hex.EncodeToString(sum[:]),
			Details: api.ModelDetails{
				Format:            "gguf",
				Family:            "llama",
				Families:          []string{"llama"},
				ParameterSize:     "0.47M",
				QuantizationLevel: "F32",
			},
		})
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", api.ListResponse{Models: models})
}

// handleShow answers /api/show with the part of Ollama's answer the
// provider reads: model_info (the architecture and its context_length)
// and the Modelfile parameters, as "name<spaces>value" lines.
func (s *ScriptedOllama) handleShow(w http.ResponseWriter, r *http.Request) {
	var req api.ShowRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, "application/json; charset=utf-8", map[string]string{"error": err.Error()})
		return
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if !s.hasModel(name) {
		writeJSON(w, http.StatusNotFound, "application/json; charset=utf-8", map[string]string{"error": fmt.Sprintf("model '%s' not found", name)})
		return
	}
	ctxLen := s.cfg.ContextLength
	if ctxLen == 0 {
		ctxLen = 2048
	}
	params := "top_k                          1"
	if s.cfg.NumCtx > 0 {
		params = fmt.Sprintf("num_ctx                        %d\n%s", s.cfg.NumCtx, params)
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", map[string]any{
		"modelfile":  "FROM ./tiny.gguf",
		"parameters": params,
		"template":   "{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}assistant: ",
		"details":    map[string]any{"format": "gguf", "family": "llama", "families": []string{"llama"}},
		"model_info": map[string]any{
			"general.architecture":   "llama",
			"llama.context_length":   ctxLen,
			"llama.embedding_length": 64,
		},
		"capabilities": []string{"completion"},
		"modified_at":  s.started,
	})
}

// fullModelName adds Ollama's default tag.
func fullModelName(name string) string {
	if i := strings.LastIndexByte(name, ':'); i < 0 || strings.Contains(name[i:], "/") {
		return name + ":latest"
	}
	return name
}

func (s *ScriptedOllama) hasModel(name string) bool {
	if len(s.cfg.Models) == 0 {
		return true
	}
	want := fullModelName(name)
	for _, m := range s.cfg.Models {
		if strings.EqualFold(fullModelName(m), want) {
			return true
		}
	}
	return false
}

// writeJSON answers as gin's c.JSON does: json.Marshal, no trailing newline.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(b)
}

func (s *ScriptedOllama) handleChat(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := &ScriptedRequest{Body: body, Header: r.Header.Clone(), ReceivedAt: time.Now(), requestState: newRequestState()}
	decodeErr := json.Unmarshal(body, &req.Chat)
	pushed := s.arrive(req, &req.Index)
	defer close(req.finished)

	const jsonCT = "application/json; charset=utf-8"
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		writeJSON(w, http.StatusBadRequest, jsonCT, map[string]any{"error": "missing request body"})
		return
	case decodeErr != nil:
		writeJSON(w, http.StatusBadRequest, jsonCT, map[string]any{"error": decodeErr.Error()})
		return
	case req.Chat.Model == "":
		writeJSON(w, http.StatusBadRequest, jsonCT, map[string]any{"error": "model is required"})
		return
	case !s.hasModel(req.Chat.Model):
		writeJSON(w, http.StatusNotFound, jsonCT, map[string]any{"error": fmt.Sprintf("model '%s' not found", req.Chat.Model)})
		return
	}
	p := &player{req: req, start: req.ReceivedAt}
	p.stream = s.newStream(w, r, &req.requestState, func(h http.Header) { h.Set("Content-Type", "application/x-ndjson") })
	p.play(s.scriptFor(pushed, req), p.step)
}

// player plays one script onto one response as NDJSON records.
type player struct {
	stream
	req     *ScriptedRequest
	start   time.Time
	firstAt time.Time // first record written
	records int       // content and thinking records written
}

// step plays st and reports whether the response goes on.
func (p *player) step(st Step) bool {
	switch st.kind {
	case kindContent, kindThinking:
		msg := api.Message{Role: "assistant"}
		if st.kind == kindContent {
			msg.Content = st.text
		} else {
			msg.Thinking = st.text
		}
		rec := p.record(api.ChatResponse{Message: msg})
		p.records++
		if p.firstAt.IsZero() {
			p.firstAt = time.Now()
		}
		return p.write(rec, st, textOffset(rec, st.text))
	case kindError:
		if !p.started {
			// streamResponse: c.Header("Content-Type", "application/json")
			// then c.JSON, which keeps that content type.
			writeJSON(p.w, st.status, "application/json", map[string]any{"error": st.text})
			return false
		}
		var b bytes.Buffer
		json.NewEncoder(&b).Encode(map[string]any{"error": st.text})
		p.write(b.Bytes(), st, 0)
		return false
	case kindDone:
		p.write(p.doneRecord(st.stats), st, 0)
		return false
	}
	if goOn, ok := p.common(st); ok {
		return goOn
	}
	panic(fmt.Sprintf("scripted ollama: step kind %d is not an Ollama step (StepFinish, StepUsage, StepDoneMarker and StepComment are ScriptedOpenAI's only)", st.kind))
}

// record encodes r as the real server does: json.Marshal(api.ChatResponse)
// plus a newline.
func (p *player) record(r api.ChatResponse) []byte {
	r.Model = p.req.Chat.Model
	r.CreatedAt = time.Now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func (p *player) doneRecord(st DoneStats) []byte {
	if st.Reason == "" {
		st.Reason = "stop"
	}
	if st.PromptEvalCount == 0 {
		for _, m := range p.req.Chat.Messages {
			st.PromptEvalCount += len(m.Content)
		}
		st.PromptEvalCount = max(st.PromptEvalCount, 1)
	}
	if st.EvalCount == 0 {
		st.EvalCount = max(p.records, 1)
	}
	now := time.Now()
	first := p.firstAt
	if first.IsZero() {
		first = now
	}
	atLeast1 := func(d time.Duration) time.Duration { return max(d, time.Nanosecond) }
	total := atLeast1(now.Sub(p.start))
	return p.record(api.ChatResponse{
		Message:    api.Message{Role: "assistant"},
		Done:       true,
		DoneReason: st.Reason,
		Metrics: api.Metrics{
			TotalDuration:      total,
			LoadDuration:       atLeast1(total / 100),
			PromptEvalCount:    st.PromptEvalCount,
			PromptEvalDuration: atLeast1(first.Sub(p.start)),
			EvalCount:          st.EvalCount,
			EvalDuration:       atLeast1(now.Sub(first)),
		},
	})
}

// textOffset is where text's JSON encoding starts inside rec.
func textOffset(rec []byte, text string) int {
	enc, _ := json.Marshal(text)
	if i := bytes.Index(rec, enc); i >= 0 {
		return i + 1 // past the opening quote
	}
	return 0
}

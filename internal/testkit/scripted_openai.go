package testkit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// OpenAIFlavor chooses whose rendering of the OpenAI streaming protocol a
// ScriptedOpenAI copies. Both send `data: {json}\n\n` events, a final
// usage-only chunk when the request asked for one, and `data: [DONE]\n\n`.
type OpenAIFlavor int

const (
	// FlavorOllama copies Ollama v0.17.4's /v1/chat/completions byte for
	// byte (checked against a real server by
	// TestScriptedOpenAIMatchesRealOllama): every delta carries
	// "role":"assistant" and "content", reasoning goes in "reasoning", the
	// finish chunk has content "" and a finish_reason, errors before
	// output are {"error":{"message","type":"api_error","param":null,
	// "code":null}}, and an error after output becomes an empty chunk
	// followed by the end of the response, with no [DONE].
	FlavorOllama OpenAIFlavor = iota
	// FlavorOpenAI copies api.openai.com's documented shape: a first chunk
	// with the role and empty content, then {"content":…} deltas, a finish
	// chunk with an empty delta, "logprobs":null in choices, "usage":null
	// in every chunk when usage was asked for, reasoning (which OpenAI
	// itself never streams) as DeepSeek and vLLM send it, errors as
	// indented {"error":{…}} bodies, and an error after output as a
	// `data: {"error":{…}}` event.
	FlavorOpenAI
)

func (f OpenAIFlavor) String() string {
	if f == FlavorOpenAI {
		return "openai"
	}
	return "ollama"
}

// ScriptedOpenAIConfig configures a ScriptedOpenAI.
type ScriptedOpenAIConfig struct {
	// Flavor is whose wire format to copy. Zero value means FlavorOllama.
	Flavor OpenAIFlavor
	// Models are the model ids /v1/models lists. A chat request for
	// another model gets the flavor's 404. FlavorOllama matches as Ollama
	// does ("tiny" is "tiny:latest", ignoring case) and lists full names.
	// Zero value means every model is accepted and the list is empty.
	Models []string
	// ContextLength gives /v1/models entries a "context_length", as
	// OpenRouter's do. Zero value means no entry has one.
	ContextLength map[string]int
	// APIKey, when set, is required as "Authorization: Bearer <APIKey>" on
	// every request; others get OpenAI's 401 invalid_api_key. Zero value
	// means no auth, as Ollama.
	APIKey string
	// ReasoningField is the delta field StepThinking fills: "reasoning"
	// (Ollama, OpenRouter, Groq) or "reasoning_content" (DeepSeek, vLLM).
	// Zero value means "reasoning" for FlavorOllama and
	// "reasoning_content" for FlavorOpenAI.
	ReasoningField string
	// Script chooses the script of a request for which none was pushed
	// with Push. It runs on the request's goroutine. Zero value means
	// TextReply(DefaultScriptedReply, 8).
	Script func(*ScriptedOpenAIRequest) Script
}

// ScriptedOpenAI is a real HTTP server on 127.0.0.1 that answers like an
// OpenAI-compatible endpoint (/v1/chat/completions with stream true,
// /v1/models), with each chat reply played from a Script, the same Script
// type that ScriptedOllama plays. It records every chat request and
// whether the client cancelled it.
//
// How steps map to the OpenAI protocol: StepContent and StepThinking send
// one chunk each (delta content, or the reasoning field); StepDone sends
// the finish chunk (DoneStats.Reason as finish_reason), then the
// usage-only chunk (empty choices; PromptEvalCount and EvalCount as
// prompt_tokens and completion_tokens) if the request set
// stream_options.include_usage, then [DONE], and ends the response;
// StepEnd ends it with neither finish_reason nor [DONE] (what Ollama's /v1
// does when a model loops); StepError before output answers the error
// status and body, after output see OpenAIFlavor. StepFinish, StepUsage,
// StepDoneMarker and StepComment send those pieces on their own, and
// StepHeader sets a response header (e.g. Retry-After) for the answer.
//
// All methods are safe for concurrent use. Requests are served
// concurrently; each takes the next pushed script in order.
type ScriptedOpenAI struct {
	scriptedCore[ScriptedOpenAIRequest]
	cfg     ScriptedOpenAIConfig
	created int64 // the models' "created"
}

// NewScriptedOpenAI starts a ScriptedOpenAI that is closed when tb's test
// ends.
func NewScriptedOpenAI(tb testing.TB, cfg ScriptedOpenAIConfig) *ScriptedOpenAI {
	tb.Helper()
	if cfg.ReasoningField == "" {
		cfg.ReasoningField = "reasoning"
		if cfg.Flavor == FlavorOpenAI {
			cfg.ReasoningField = "reasoning_content"
		}
	}
	s := &ScriptedOpenAI{cfg: cfg, created: time.Now().Unix()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Flavor == FlavorOpenAI {
			s.writeError(w, http.StatusNotFound, "invalid_request_error", "unknown_url",
				fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
			return
		}
		writeGinNotFound(w)
	})
	s.start(tb, "scripted openai", cfg.Script, mux)
	return s
}

// URL is the server's base URL up to and including /v1, e.g.
// "http://127.0.0.1:41234/v1", as an OpenAI client's base URL is given.
func (s *ScriptedOpenAI) URL() string { return s.srv.URL + "/v1" }

// Requests returns the chat requests received so far, in arrival order.
func (s *ScriptedOpenAI) Requests() []*ScriptedOpenAIRequest { return s.requests() }

// WaitRequests waits until at least n chat requests have arrived and
// returns them. It fails tb after 10 s; call it from the test goroutine.
func (s *ScriptedOpenAI) WaitRequests(tb testing.TB, n int) []*ScriptedOpenAIRequest {
	tb.Helper()
	return s.waitRequests(tb, n)
}

// OpenAIChatRequest is the part of a /v1/chat/completions request body
// that ScriptedOpenAI reads. The raw body is in ScriptedOpenAIRequest.Body.
type OpenAIChatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int `json:"max_tokens"`
	MaxCompletionTokens *int `json:"max_completion_tokens"`
}

// ScriptedOpenAIRequest is one chat request as the server received it. Its
// exported fields are set before it becomes visible and never change.
type ScriptedOpenAIRequest struct {
	Index      int               // 0-based arrival order
	Chat       OpenAIChatRequest // the decoded body (zero if it did not decode)
	Body       []byte            // the raw body
	Header     http.Header
	ReceivedAt time.Time

	requestState // Cancelled, CancelledAt, Finished
}

// Step kinds that only ScriptedOpenAI plays (kindHeader both do). They
// continue the iota block in scripted_ollama.go at a distance.
const (
	kindHeader stepKind = iota + 100
	kindFinish
	kindUsage
	kindDoneMarker
	kindComment
)

// StepHeader sets a response header for the answer that follows, e.g.
// StepHeader("Retry-After", "7") before StepErrorStatus(429, …). It must
// come before anything is written.
func StepHeader(key, value string) Step {
	return Step{kind: kindHeader, text: key, raw: []byte(value)}
}

// StepFinish sends only the finish chunk, with finish_reason reason
// ("stop", "length"…), and goes on. ScriptedOpenAI only.
func StepFinish(reason string) Step { return Step{kind: kindFinish, text: reason} }

// StepUsage sends only the usage-only chunk (empty choices) with stats, and
// goes on, whether or not the request asked for usage. ScriptedOpenAI only.
func StepUsage(stats DoneStats) Step { return Step{kind: kindUsage, stats: stats} }

// StepDoneMarker sends only `data: [DONE]` and goes on. ScriptedOpenAI
// only.
func StepDoneMarker() Step { return Step{kind: kindDoneMarker} }

// StepComment sends an SSE comment line (": text"), as OpenRouter does
// while a request waits, and goes on. ScriptedOpenAI only.
func StepComment(text string) Step { return Step{kind: kindComment, text: text} }

// --- handlers ---

const (
	oaiJSON      = "application/json"
	oaiJSONUTF8  = "application/json; charset=utf-8"
	oaiStreamOll = "text/event-stream"
	oaiStreamOAI = "text/event-stream; charset=utf-8"
)

// authorized answers 401 unless the request carries the configured key.
func (s *ScriptedOpenAI) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && got == s.cfg.APIKey {
		return true
	}
	msg := "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
	if ok {
		msg = "Incorrect API key provided: " + maskKey(got) + ". You can find your API key at https://platform.openai.com/account/api-keys."
	}
	s.writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", msg)
	return false
}

// maskKey shows a key as OpenAI's 401 message does: its ends only.
func maskKey(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:3] + strings.Repeat("*", len(k)-7) + k[len(k)-4:]
}

func (s *ScriptedOpenAI) handleModels(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	type model struct {
		ID            string `json:"id"`
		Object        string `json:"object"`
		Created       int64  `json:"created"`
		OwnedBy       string `json:"owned_by"`
		ContextLength int    `json:"context_length,omitempty"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range s.cfg.Models {
		id, owner := m, "openai"
		if s.cfg.Flavor == FlavorOllama {
			id, owner = fullModelName(m), "library"
		}
		list.Data = append(list.Data, model{ID: id, Object: "model", Created: s.created, OwnedBy: owner, ContextLength: s.cfg.ContextLength[m]})
	}
	if s.cfg.Flavor == FlavorOpenAI {
		b, _ := json.MarshalIndent(list, "", "  ")
		w.Header().Set("Content-Type", oaiJSON)
		w.Write(append(b, '\n'))
		return
	}
	writeJSON(w, http.StatusOK, oaiJSON, list)
}

func (s *ScriptedOpenAI) hasModel(name string) bool {
	if len(s.cfg.Models) == 0 {
		return true
	}
	for _, m := range s.cfg.Models {
		if s.cfg.Flavor == FlavorOllama && strings.EqualFold(fullModelName(m), fullModelName(name)) || m == name {
			return true
		}
	}
	return false
}

// errorBody renders an OpenAI error object, fields in the order both
// OpenAI and Ollama send them.
func (s *ScriptedOpenAI) errorBody(typ, code, msg string) []byte {
	type apiError struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   any     `json:"param"`
		Code    *string `json:"code"`
	}
	e := apiError{Message: msg, Type: typ}
	if code != "" {
		e.Code = &code
	}
	v := struct {
		Error apiError `json:"error"`
	}{e}
	if s.cfg.Flavor == FlavorOpenAI {
		b, _ := json.MarshalIndent(v, "", "    ")
		return append(b, '\n')
	}
	// Ollama's middleware: json.NewEncoder(w).Encode(openai.ErrorResponse).
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(v)
	return b.Bytes()
}

// writeError answers status with an error body. Ollama's handler errors
// go out as application/json; its request-validation errors (gin's
// AbortWithStatusJSON) as application/json; charset=utf-8, which the
// callers choose through ct.
func (s *ScriptedOpenAI) writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	s.writeErrorCT(w, status, oaiJSON, typ, code, msg)
}

func (s *ScriptedOpenAI) writeErrorCT(w http.ResponseWriter, status int, ct, typ, code, msg string) {
	body := s.errorBody(typ, code, msg)
	if s.cfg.Flavor == FlavorOllama && ct == oaiJSONUTF8 {
		body = bytes.TrimSuffix(body, []byte("\n")) // gin's c.JSON: no newline
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	w.Write(body)
}

// statusErrorType is the error "type" for a script's error status.
func (s *ScriptedOpenAI) statusErrorType(status int) (typ, code string) {
	if s.cfg.Flavor == FlavorOllama {
		return "api_error", "" // openai.NewError(500, …) whatever the status
	}
	switch {
	case status == http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded"
	case status >= 500:
		return "server_error", ""
	}
	return "invalid_request_error", ""
}

func (s *ScriptedOpenAI) handleChat(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := &ScriptedOpenAIRequest{Body: body, Header: r.Header.Clone(), ReceivedAt: time.Now(), requestState: newRequestState()}
	decodeErr := json.Unmarshal(body, &req.Chat)
	pushed := s.arrive(req, &req.Index)
	defer close(req.finished)

	if !s.authorized(w, r) {
		return
	}
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		s.writeErrorCT(w, http.StatusBadRequest, oaiJSONUTF8, "invalid_request_error", "", "EOF")
		return
	case decodeErr != nil:
		s.writeErrorCT(w, http.StatusBadRequest, oaiJSONUTF8, "invalid_request_error", "", decodeErr.Error())
		return
	case len(req.Chat.Messages) == 0:
		s.writeErrorCT(w, http.StatusBadRequest, oaiJSONUTF8, "invalid_request_error", "", "[] is too short - 'messages'")
		return
	case req.Chat.Model == "":
		s.writeError(w, http.StatusBadRequest, "api_error", "", "model is required")
		return
	case !s.hasModel(req.Chat.Model):
		if s.cfg.Flavor == FlavorOpenAI {
			s.writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found",
				fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Chat.Model))
		} else {
			s.writeError(w, http.StatusNotFound, "api_error", "", fmt.Sprintf("model '%s' not found", req.Chat.Model))
		}
		return
	case !req.Chat.Stream:
		s.writeError(w, http.StatusBadRequest, "invalid_request_error", "", "scripted openai: only stream:true is scripted")
		return
	}
	p := &oaiPlayer{s: s, req: req, includeUsage: req.Chat.StreamOptions != nil && req.Chat.StreamOptions.IncludeUsage}
	p.id, p.fingerprint = s.ids()
	p.stream = s.newStream(w, r, &req.requestState, p.begin)
	p.play(s.scriptFor(pushed, req), p.step)
}

// ids returns a completion id and a system fingerprint in the flavor's
// form.
func (s *ScriptedOpenAI) ids() (id, fingerprint string) {
	if s.cfg.Flavor == FlavorOllama {
		var b [2]byte
		rand.Read(b[:])
		return fmt.Sprintf("chatcmpl-%d", (int(b[0])<<8|int(b[1]))%999), "fp_ollama"
	}
	var b [15]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return "chatcmpl-" + h[:29], "fp_" + h[20:30]
}

// oaiPlayer plays one script onto one response as an event stream.
type oaiPlayer struct {
	stream
	s            *ScriptedOpenAI
	req          *ScriptedOpenAIRequest
	id           string
	fingerprint  string
	includeUsage bool
	records      int  // content and thinking chunks sent
	roleSent     bool // FlavorOpenAI: the first (role) chunk went out
}

// begin sets the headers of the 200 event stream.
func (p *oaiPlayer) begin(h http.Header) {
	if p.s.cfg.Flavor == FlavorOpenAI {
		h.Set("Content-Type", oaiStreamOAI)
		h.Set("X-Request-Id", "req_"+strings.TrimPrefix(p.id, "chatcmpl-"))
	} else {
		h.Set("Content-Type", oaiStreamOll)
	}
}

// step plays st and reports whether the response goes on.
func (p *oaiPlayer) step(st Step) bool {
	flavor := p.s.cfg.Flavor
	switch st.kind {
	case kindContent, kindThinking:
		if flavor == FlavorOpenAI && !p.roleSent {
			p.roleSent = true
			ev, _ := p.chunk(func(b []byte) ([]byte, int) {
				return append(b, `{"role":"assistant","content":"","refusal":null}`...), 0
			}, "")
			if !p.write(ev, Step{}, 0) {
				return false
			}
		}
		field := "content"
		if st.kind == kindThinking {
			field = p.s.cfg.ReasoningField
		}
		ev, at := p.chunk(func(b []byte) ([]byte, int) { return p.delta(b, field, st.text) }, "")
		p.records++
		return p.write(ev, st, at)
	case kindComment:
		return p.write([]byte(": "+st.text+"\n\n"), st, 0)
	case kindError:
		if !p.started {
			typ, code := p.s.statusErrorType(st.status)
			p.s.writeError(p.w, st.status, typ, code, st.text)
			return false
		}
		if flavor == FlavorOllama {
			// Ollama's ChatWriter decodes the {"error":…} line as an
			// empty api.ChatResponse and sends it as a chunk; then the
			// handler returns: no finish_reason, no [DONE].
			ev, _ := p.chunkModel("", func(b []byte) ([]byte, int) { return p.delta(b, "content", "") }, "")
			p.write(ev, st, 0)
			return false
		}
		ev := append([]byte("data: "), bytes.TrimSuffix(compactJSON(p.s.errorBody("server_error", "", st.text)), []byte("\n"))...)
		p.write(append(ev, "\n\n"...), st, 0)
		return false
	case kindFinish:
		return p.finish(st.text, st)
	case kindUsage:
		return p.usage(st.stats, st)
	case kindDoneMarker:
		return p.write([]byte("data: [DONE]\n\n"), st, 0)
	case kindDone:
		reason := st.stats.Reason
		if reason == "" {
			reason = "stop"
		}
		if !p.finish(reason, st) {
			return false
		}
		if p.includeUsage && !p.usage(st.stats, st) {
			return false
		}
		p.write([]byte("data: [DONE]\n\n"), st, 0)
		return false
	}
	if goOn, ok := p.common(st); ok {
		return goOn
	}
	panic(fmt.Sprintf("scripted openai: unknown step kind %d", st.kind))
}

// finish sends the chunk that carries finish_reason.
func (p *oaiPlayer) finish(reason string, st Step) bool {
	ev, _ := p.chunk(func(b []byte) ([]byte, int) {
		if p.s.cfg.Flavor == FlavorOpenAI {
			return append(b, "{}"...), 0
		}
		return p.delta(b, "content", "")
	}, reason)
	return p.write(ev, Step{pause: st.pause}, 0)
}

// usage sends the usage-only chunk.
func (p *oaiPlayer) usage(stats DoneStats, st Step) bool {
	prompt, completion := stats.PromptEvalCount, stats.EvalCount
	if prompt == 0 {
		for _, m := range p.req.Chat.Messages {
			prompt += len(m.Content)
		}
		prompt = max(prompt, 1)
	}
	if completion == 0 {
		completion = max(p.records, 1)
	}
	b := p.head(p.req.Chat.Model)
	b = append(b, `"choices":[],"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	if p.s.cfg.Flavor == FlavorOpenAI {
		b = append(b, `,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}`...)
	}
	b = append(b, "}}\n\n"...)
	return p.write(b, Step{pause: st.pause}, 0)
}

// head starts an event up to and including `"system_fingerprint":…,` (or
// OpenAI's service_tier before it).
func (p *oaiPlayer) head(model string) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `data: {"id":"`...)
	b = append(b, p.id...)
	b = append(b, `","object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, `,"model":`...)
	b = appendJSONText(b, model)
	if p.s.cfg.Flavor == FlavorOpenAI {
		b = append(b, `,"service_tier":"default"`...)
	}
	b = append(b, `,"system_fingerprint":"`...)
	b = append(b, p.fingerprint...)
	return append(b, `",`...)
}

// chunk renders a chunk event with one choice whose delta delta appends
// (returning where the scripted text starts in it, or 0), and
// finish_reason finish ("" for null). It returns the event and the offset
// of the text in it.
func (p *oaiPlayer) chunk(delta func([]byte) ([]byte, int), finish string) ([]byte, int) {
	return p.chunkModel(p.req.Chat.Model, delta, finish)
}

func (p *oaiPlayer) chunkModel(model string, delta func([]byte) ([]byte, int), finish string) ([]byte, int) {
	b := p.head(model)
	b = append(b, `"choices":[{"index":0,"delta":`...)
	b, at := delta(b)
	if p.s.cfg.Flavor == FlavorOpenAI {
		b = append(b, `,"logprobs":null`...)
	}
	b = append(b, `,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONText(b, finish)
	}
	b = append(b, "}]"...)
	if p.s.cfg.Flavor == FlavorOpenAI && p.includeUsage {
		b = append(b, `,"usage":null`...)
	}
	return append(b, "}\n\n"...), at
}

// delta appends a delta object whose field holds text and returns where
// text's encoding starts.
func (p *oaiPlayer) delta(b []byte, field, text string) ([]byte, int) {
	if p.s.cfg.Flavor == FlavorOpenAI {
		if field == "content" {
			b = append(b, `{"content":`...)
		} else {
			b = append(b, `{"content":null,"`...)
			b = append(b, field...)
			b = append(b, `":`...)
		}
		at := len(b) + 1
		b = appendJSONText(b, text)
		return append(b, '}'), at
	}
	// Ollama: {"role":"assistant","content":…[,"reasoning":…]}
	b = append(b, `{"role":"assistant","content":`...)
	at := 0
	if field == "content" {
		at = len(b) + 1
		b = appendJSONText(b, text)
	} else {
		b = append(b, `""`...)
		if text != "" {
			b = append(b, `,"`...)
			b = append(b, field...)
			b = append(b, `":`...)
			at = len(b) + 1
			b = appendJSONText(b, text)
		}
	}
	return append(b, '}'), at
}

// appendJSONText appends s as a JSON string exactly as encoding/json
// encodes it (HTML-safe escapes included), except that bytes which are
// not valid UTF-8 are copied as they are instead of becoming U+FFFD: that
// is how a server that streams raw token bytes splits a character across
// chunks, and what a client must carry through uncorrupted.
func appendJSONText(b []byte, s string) []byte {
	b = append(b, '"')
	for len(s) > 0 {
		n := 0
		for n < len(s) {
			r, w := utf8.DecodeRuneInString(s[n:])
			if r == utf8.RuneError && w == 1 {
				break
			}
			n += w
		}
		if n > 0 {
			enc, _ := json.Marshal(s[:n])
			b = append(b, enc[1:len(enc)-1]...)
			s = s[n:]
			continue
		}
		b = append(b, s[0])
		s = s[1:]
	}
	return append(b, '"')
}

// compactJSON removes the indentation of a JSON body.
func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}

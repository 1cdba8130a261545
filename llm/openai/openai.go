package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/internal/upstream"
)

// Defaults for the zero values of Config.
const (
	DefaultBaseURL           = "https://api.openai.com/v1"
	DefaultConnectTimeout    = upstream.DefaultConnectTimeout
	DefaultFirstTokenTimeout = upstream.DefaultFirstTokenTimeout
	DefaultIdleTimeout       = upstream.DefaultIdleTimeout
	DefaultTotalTimeout      = upstream.DefaultTotalTimeout
)

// After [DONE], Stream reads on for at most drainTimeout and
// maxDrainBytes to let the connection be reused.
const (
	drainTimeout  = 100 * time.Millisecond
	maxDrainBytes = 4 << 10
)

// errDrainTimeout ends the read after [DONE] when the body does not end.
var errDrainTimeout = errors.New("openai: the body went on after [DONE]")

// maxEventBytes caps one SSE event's data. A chunk carries a token or a
// few; 8 MiB leaves room for servers that send a whole reply in one.
const maxEventBytes = 8 << 20

// Log attribute keys.
const (
	logKeyModel        = "model"
	logKeyBaseURL      = "base_url"
	logKeyFinishReason = "finish_reason"
	logKeyCompletion   = "completion_tokens"
	logKeyDuration     = "duration"
	logKeyError        = "error"
)

// Config configures a Provider.
type Config struct {
	// BaseURL is the API's base URL up to and including its version path,
	// e.g. "https://api.openai.com/v1", "https://openrouter.ai/api/v1" or
	// Ollama's "http://127.0.0.1:11434/v1". Requests go to
	// BaseURL+"/chat/completions" and BaseURL+"/models". A URL with no
	// path gets "/v1". Zero value means DefaultBaseURL.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>". Zero value means
	// no Authorization header (local servers such as Ollama or vLLM
	// without --api-key). Secret: never logged.
	APIKey string
	// ConnectTimeout bounds dialing the server and the TLS handshake.
	// Zero value means DefaultConnectTimeout (5 s).
	ConnectTimeout time.Duration
	// FirstTokenTimeout bounds the time from the start of a request to the
	// first streamed chunk, which includes queueing, a cold model load and
	// prompt processing. Zero value means DefaultFirstTokenTimeout
	// (5 min).
	FirstTokenTimeout time.Duration
	// IdleTimeout bounds the gap between two streamed chunks (SSE comments
	// do not count as chunks); it also caps the non-streaming calls Check
	// and Models. Zero value means DefaultIdleTimeout (2 min).
	IdleTimeout time.Duration
	// TotalTimeout caps one generation from start to end. It must not be
	// less than FirstTokenTimeout. Zero value means DefaultTotalTimeout
	// (100 min).
	TotalTimeout time.Duration
	// Logger receives debug records for each stream and warnings when a
	// timeout cancels one. Zero value means slog.Default().
	Logger *slog.Logger
}

// Provider streams chat replies from an OpenAI-compatible
// /v1/chat/completions endpoint. Create it with New.
type Provider struct {
	cfg       Config // defaults applied
	base      *url.URL
	redacted  string // base without credentials, for messages and logs
	chatURL   string
	modelsURL string
	client    *http.Client
	transport *http.Transport
	log       *slog.Logger
}

var (
	_ llm.Provider     = (*Provider)(nil)
	_ llm.ContextSizer = (*Provider)(nil)
)

// New returns a Provider for the server in cfg. It does not contact the
// server; use Check for that.
func New(cfg Config) (*Provider, error) {
	t := upstream.Timeouts{Connect: cfg.ConnectTimeout, FirstToken: cfg.FirstTokenTimeout, Idle: cfg.IdleTimeout, Total: cfg.TotalTimeout}
	if err := t.ApplyDefaults("openai"); err != nil {
		return nil, err
	}
	cfg.ConnectTimeout, cfg.FirstTokenTimeout, cfg.IdleTimeout, cfg.TotalTimeout = t.Connect, t.FirstToken, t.Idle, t.Total
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if strings.ContainsAny(cfg.APIKey, "\r\n") {
		return nil, errors.New("openai: APIKey contains a line break")
	}
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	tr := upstream.NewTransport(cfg.ConnectTimeout)
	return &Provider{
		cfg:       cfg,
		base:      base,
		redacted:  redactURL(base),
		chatURL:   base.JoinPath("chat/completions").String(),
		modelsURL: base.JoinPath("models").String(),
		client:    &http.Client{Transport: tr},
		transport: tr,
		log:       cfg.Logger,
	}, nil
}

func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("openai: invalid BaseURL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("openai: BaseURL %q: scheme must be http or https", redactURL(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("openai: BaseURL %q has no host", redactURL(u))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if u.Path == "" {
		u.Path = "/v1"
	}
	u.Fragment = ""
	return u, nil
}

// Name returns "openai".
func (p *Provider) Name() string { return "openai" }

// BaseURL returns the server's base URL (with "/v1" or whatever version
// path it was given), without credentials.
func (p *Provider) BaseURL() string { return p.redacted }

// Close closes idle connections to the server. It is safe to call more
// than once; the Provider remains usable.
func (p *Provider) Close() error {
	p.transport.CloseIdleConnections()
	return nil
}

// chatRequest is the body of a /v1/chat/completions request.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions streamOptions `json:"stream_options"`
	MaxTokens     int           `json:"max_tokens,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// newRequest builds an HTTP request with the provider's headers.
func (p *Provider) newRequest(ctx context.Context, method, url string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, fmt.Errorf("openai: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	}
	return req, nil
}

// streamState is what Stream learned from the events so far.
type streamState struct {
	done      bool   // [DONE] arrived
	finished  bool   // a finish_reason arrived
	finish    string // the last finish_reason
	usage     llm.Usage
	errObj    *errorObject // an in-stream error
	malformed error        // a chunk that did not parse
	readErr   error        // why reading stopped, when it was not [DONE] or an error
}

// Stream sends req to /chat/completions with stream true and
// stream_options.include_usage, and calls onDelta with each chunk's
// content (Delta.Text) and reasoning (Delta.Thinking). See llm.Provider for
// the contract and the package doc for timeouts and what counts as a
// completed reply.
func (p *Provider) Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (llm.Result, error) {
	if req.Model == "" {
		return llm.Result{}, errors.New("openai: request has no model")
	}
	if len(req.Messages) == 0 {
		return llm.Result{}, errors.New("openai: request has no messages")
	}
	if err := ctx.Err(); err != nil {
		return llm.Result{}, err
	}
	cr := chatRequest{
		Model:         req.Model,
		Messages:      make([]chatMessage, len(req.Messages)),
		Stream:        true,
		StreamOptions: streamOptions{IncludeUsage: true},
		MaxTokens:     max(req.MaxTokens, 0),
	}
	for i, m := range req.Messages {
		cr.Messages[i] = chatMessage{Role: m.Role, Content: m.Content}
	}
	body, err := json.Marshal(cr)
	if err != nil {
		return llm.Result{}, fmt.Errorf("openai: encode request: %w", err)
	}

	start := time.Now()
	genCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	genCtx, cancelTotal := context.WithTimeoutCause(genCtx, p.cfg.TotalTimeout, ErrTotalTimeout)
	defer cancelTotal()
	wd := upstream.StartWatchdog(p.cfg.FirstTokenTimeout, p.cfg.IdleTimeout, cancel, ErrFirstTokenTimeout, ErrIdleTimeout)
	defer wd.Stop()
	log := p.log.With(logKeyModel, req.Model)

	httpReq, err := p.newRequest(genCtx, http.MethodPost, p.chatURL, body)
	if err != nil {
		return llm.Result{}, err
	}
	httpReq.Header.Set("Accept", "text/event-stream")
	resp, err := p.client.Do(httpReq)
	if err != nil {
		return llm.Result{}, p.endError(ctx, genCtx, log, start, func() error { return p.transportError(err) })
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK || isJSON(resp.Header.Get("Content-Type")) {
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return llm.Result{}, p.endError(ctx, genCtx, log, start, func() error {
			if resp.StatusCode != http.StatusOK {
				return statusError(resp, b, time.Now())
			}
			return notAStream(resp, b, rerr)
		})
	}

	var (
		st  streamState
		c   chunk
		sse = newSSEReader(resp.Body, maxEventBytes)
	)
	for {
		data, err := sse.next()
		if err != nil {
			st.readErr = err
			break
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue // an empty event: a keepalive at most, not a chunk
		}
		wd.Enter()
		more := st.handle(data, &c, onDelta)
		wd.Leave()
		if !more {
			break
		}
	}
	wd.Stop()
	if st.done {
		// Read what follows [DONE], normally only the end of the chunked
		// encoding, which may arrive a moment later, so the connection
		// goes back to the pool (no new TCP and TLS handshake for the next
		// generation). A server that keeps the body open is cut off.
		t := time.AfterFunc(drainTimeout, func() { cancel(errDrainTimeout) })
		_, _ = io.Copy(io.Discard, io.LimitReader(sse.br, maxDrainBytes))
		t.Stop()
	}

	switch {
	case st.errObj != nil:
		err := streamError(st.errObj)
		log.Debug("openai stream failed", logKeyError, err, logKeyDuration, time.Since(start))
		return llm.Result{}, err
	case st.malformed != nil:
		err := &llm.Error{Code: llm.CodeUpstreamError, Message: "malformed chunk from the model server", Err: st.malformed}
		log.Debug("openai stream failed", logKeyError, err, logKeyDuration, time.Since(start))
		return llm.Result{}, err
	case st.finish == "error":
		// OpenRouter's mark of a stream that failed (it normally sends an
		// error object with it).
		err := &llm.Error{Code: llm.CodeUpstreamError, Message: "the model server ended the stream with finish_reason \"error\"", Err: llm.ErrIncomplete}
		log.Debug("openai stream failed", logKeyError, err, logKeyDuration, time.Since(start))
		return llm.Result{}, err
	case st.done || st.finished:
		// The reply is complete, even if the connection broke or ctx was
		// cancelled while we waited for the usage chunk or [DONE].
		res := llm.Result{DoneReason: st.finish, Usage: st.usage}
		log.Debug("openai stream done", logKeyFinishReason, res.DoneReason,
			logKeyCompletion, res.Usage.CompletionTokens, logKeyDuration, time.Since(start))
		return res, nil
	}
	return llm.Result{}, p.endError(ctx, genCtx, log, start, func() error { return incompleteError(st.readErr) })
}

// handle applies one event's data to st and reports whether to read on.
func (st *streamState) handle(data []byte, c *chunk, onDelta func(llm.Delta)) bool {
	if bytes.Equal(bytes.TrimSpace(data), doneMarker) {
		st.done = true
		return false
	}
	pc, err := parseChunk(data, c)
	if err != nil {
		st.malformed = err
		return false
	}
	if pc.err != nil {
		st.errObj = pc.err
		return false
	}
	if pc.usage != nil {
		st.usage = llm.Usage{PromptTokens: pc.usage.PromptTokens, CompletionTokens: pc.usage.CompletionTokens}
	}
	if (pc.text != "" || pc.thinking != "") && onDelta != nil {
		onDelta(llm.Delta{Text: pc.text, Thinking: pc.thinking})
	}
	if pc.finishReason != "" {
		st.finished = true
		st.finish = pc.finishReason
	}
	return true
}

// endError returns the error of a stream that ended without completing:
// ctx's own error if the caller cancelled, a timeout error if one of our
// timers did, else what mapErr says.
func (p *Provider) endError(ctx, genCtx context.Context, log *slog.Logger, start time.Time, mapErr func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if cause := context.Cause(genCtx); isOurTimeout(cause) {
		err := timeoutError(cause, &p.cfg)
		log.Warn("openai stream cancelled by timeout", logKeyError, err, logKeyDuration, time.Since(start))
		return err
	}
	err := mapErr()
	log.Debug("openai stream failed", logKeyError, err, logKeyDuration, time.Since(start))
	return err
}

// incompleteError is the error of a stream that ended without [DONE] or a
// finish_reason.
func incompleteError(readErr error) error {
	switch {
	case readErr == nil || errors.Is(readErr, io.EOF):
		return &llm.Error{
			Code:    llm.CodeUpstreamError,
			Message: "the model server ended the stream without finish_reason or [DONE]",
			Err:     llm.ErrIncomplete,
		}
	case errors.Is(readErr, errEventTooLarge):
		return &llm.Error{
			Code:    llm.CodeUpstreamError,
			Message: fmt.Sprintf("an event from the model server exceeded %d bytes", maxEventBytes),
			Err:     fmt.Errorf("%w: %w", llm.ErrIncomplete, readErr),
		}
	}
	return &llm.Error{
		Code:    llm.CodeUpstreamError,
		Message: "the connection to the model server broke before the reply was done",
		Err:     fmt.Errorf("%w: %w", llm.ErrIncomplete, readErr),
	}
}

// notAStream is the error for a 200 answer with a JSON body instead of an
// event stream: an error object if it holds one, else a server that
// ignored stream: true.
func notAStream(resp *http.Response, body []byte, readErr error) error {
	if msg, typ, code := errorBodyMessage(resp.Header.Get("Content-Type"), body); msg != "" {
		return &llm.Error{Code: llm.CodeUpstreamError, Message: upstream.ClipMessage("the model server answered with an error: " + msg),
			Err: &StreamError{Message: msg, Type: typ, Code: code}}
	}
	err := fmt.Errorf("answer is %s, not text/event-stream", resp.Header.Get("Content-Type"))
	if readErr != nil {
		err = fmt.Errorf("%w (read: %w)", err, readErr)
	}
	return &llm.Error{Code: llm.CodeUpstreamError, Message: "the model server did not stream its answer", Err: err}
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}

// errNoAnswer is the cause set when a non-streaming call hits IdleTimeout.
var errNoAnswer = errors.New("no answer within the idle timeout")

// Check asks the server for its model list (/models): it passes when the
// server answers 200 to this Provider's credentials.
func (p *Provider) Check(ctx context.Context) error {
	_, err := p.listModels(ctx)
	if err == nil {
		p.log.Debug("openai-compatible server answers", logKeyBaseURL, p.redacted)
	}
	return err
}

// Models lists the models the server offers (/models: data[].id), with
// their context window when the server gives one ("context_length" at
// OpenRouter, "max_model_len" at vLLM, "context_window" at Groq).
func (p *Provider) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	return p.listModels(ctx)
}

// ContextLength returns model's context window from /models, or zero when
// the server does not say (OpenAI and Ollama do not) or does not list the
// model.
func (p *Provider) ContextLength(ctx context.Context, model string) (int, error) {
	models, err := p.listModels(ctx)
	if err != nil {
		return 0, err
	}
	for _, m := range models {
		if m.Name == model {
			return m.ContextLength, nil
		}
	}
	for _, m := range models {
		if llm.SameModel(m.Name, model) {
			return m.ContextLength, nil
		}
	}
	return 0, nil
}

func (p *Provider) listModels(ctx context.Context) ([]llm.ModelInfo, error) {
	callCtx, cancel := context.WithTimeoutCause(ctx, p.cfg.IdleTimeout, errNoAnswer)
	defer cancel()
	req, err := p.newRequest(callCtx, http.MethodGet, p.modelsURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, p.callError(ctx, callCtx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, statusError(resp, b, time.Now())
	}
	var list struct {
		Data []struct {
			ID            string `json:"id"`
			ContextLength int    `json:"context_length"`
			MaxModelLen   int    `json:"max_model_len"`
			ContextWindow int    `json:"context_window"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&list); err != nil {
		if ctx.Err() != nil || context.Cause(callCtx) == errNoAnswer {
			return nil, p.callError(ctx, callCtx, err)
		}
		return nil, &llm.Error{Code: llm.CodeUpstreamError, Message: "malformed model list from the model server", Err: err}
	}
	models := make([]llm.ModelInfo, 0, len(list.Data))
	for _, m := range list.Data {
		n := m.ContextLength
		if n <= 0 {
			n = m.MaxModelLen
		}
		if n <= 0 {
			n = m.ContextWindow
		}
		models = append(models, llm.ModelInfo{Name: m.ID, ContextLength: max(n, 0)})
	}
	return models, nil
}

// callError maps the error of a non-streaming call made with callCtx, which
// is ctx capped at IdleTimeout.
func (p *Provider) callError(ctx, callCtx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if context.Cause(callCtx) == errNoAnswer {
		return &llm.Error{
			Code:      llm.CodeUpstreamUnavailable,
			Message:   fmt.Sprintf("the model server at %s did not answer within %v", p.redacted, p.cfg.IdleTimeout),
			Err:       err,
			Retryable: true,
		}
	}
	return p.transportError(err)
}

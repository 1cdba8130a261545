package ollama

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/internal/upstream"
)

// Defaults for the zero values of Config.
const (
	DefaultBaseURL           = "http://127.0.0.1:11434"
	DefaultConnectTimeout    = upstream.DefaultConnectTimeout
	DefaultFirstTokenTimeout = upstream.DefaultFirstTokenTimeout
	DefaultIdleTimeout       = upstream.DefaultIdleTimeout
	DefaultTotalTimeout      = upstream.DefaultTotalTimeout
)

// Log attribute keys.
const (
	logKeyModel      = "model"
	logKeyBaseURL    = "base_url"
	logKeyDoneReason = "done_reason"
	logKeyEvalCount  = "eval_count"
	logKeyDuration   = "duration"
	logKeyError      = "error"
	logKeyVersion    = "version"
)

// Config configures a Provider.
type Config struct {
	// BaseURL is the Ollama server, e.g. "http://127.0.0.1:11434". A value
	// without a scheme ("host:port", as in OLLAMA_HOST) gets "http://".
	// Zero value means DefaultBaseURL.
	BaseURL string
	// ConnectTimeout bounds dialing the server (and a TLS handshake).
	// Zero value means DefaultConnectTimeout (5 s).
	ConnectTimeout time.Duration
	// FirstTokenTimeout bounds the time from the start of a request to the
	// first streamed record, which includes a cold model load and prompt
	// processing. Zero value means DefaultFirstTokenTimeout (5 min).
	FirstTokenTimeout time.Duration
	// IdleTimeout bounds the gap between two streamed records; it also caps
	// the non-streaming calls Check and Models. Zero value means
	// DefaultIdleTimeout (2 min).
	IdleTimeout time.Duration
	// TotalTimeout caps one generation from start to done record. It must
	// not be less than FirstTokenTimeout. Zero value means
	// DefaultTotalTimeout (100 min).
	TotalTimeout time.Duration
	// Logger receives debug records for each stream and warnings when a
	// timeout cancels one. Zero value means slog.Default().
	Logger *slog.Logger
}

// Provider streams chat replies from an Ollama server. Create it with New.
type Provider struct {
	cfg       Config // defaults applied
	base      *url.URL
	client    *api.Client  // non-streaming calls (version, tags, show)
	http      *http.Client // the chat stream (chat.go)
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
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	hc, tr := newHTTPClient(&cfg)
	return &Provider{
		cfg:       cfg,
		base:      base,
		client:    api.NewClient(base, hc),
		http:      hc,
		transport: tr,
		log:       cfg.Logger,
	}, nil
}

func (c *Config) applyDefaults() error {
	t := upstream.Timeouts{Connect: c.ConnectTimeout, FirstToken: c.FirstTokenTimeout, Idle: c.IdleTimeout, Total: c.TotalTimeout}
	if err := t.ApplyDefaults("ollama"); err != nil {
		return err
	}
	c.ConnectTimeout, c.FirstTokenTimeout, c.IdleTimeout, c.TotalTimeout = t.Connect, t.FirstToken, t.Idle, t.Total
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func parseBaseURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("ollama: invalid BaseURL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("ollama: BaseURL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("ollama: BaseURL %q has no host", s)
	}
	return u, nil
}

// Name returns "ollama".
func (p *Provider) Name() string { return "ollama" }

// BaseURL returns the server's base URL.
func (p *Provider) BaseURL() string { return p.base.String() }

// Close closes idle connections to the server. It is safe to call more
// than once; the Provider remains usable.
func (p *Provider) Close() error {
	p.transport.CloseIdleConnections()
	return nil
}

// Stream sends req to /api/chat with streaming on and calls onDelta with
// each record's message content and thinking text. See llm.Provider for the
// contract and the package doc for timeouts.
func (p *Provider) Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (llm.Result, error) {
	if req.Model == "" {
		return llm.Result{}, errors.New("ollama: request has no model")
	}
	if len(req.Messages) == 0 {
		return llm.Result{}, errors.New("ollama: request has no messages")
	}
	if err := ctx.Err(); err != nil {
		return llm.Result{}, err
	}

	msgs := make([]api.Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = api.Message{Role: m.Role, Content: m.Content}
	}
	stream := true
	chatReq := &api.ChatRequest{Model: req.Model, Messages: msgs, Stream: &stream}
	if req.MaxTokens > 0 {
		chatReq.Options = map[string]any{"num_predict": req.MaxTokens}
	}

	start := time.Now()
	genCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	genCtx, cancelTotal := context.WithTimeoutCause(genCtx, p.cfg.TotalTimeout, ErrTotalTimeout)
	defer cancelTotal()
	st := &streamTrack{}
	genCtx = context.WithValue(genCtx, trackKey{}, st)
	wd := upstream.StartWatchdog(p.cfg.FirstTokenTimeout, p.cfg.IdleTimeout, cancel, ErrFirstTokenTimeout, ErrIdleTimeout)

	var (
		done   *api.ChatResponse
		result llm.Result
	)
	err := p.chat(genCtx, chatReq, func(r api.ChatResponse) error {
		if done != nil {
			return nil // nothing follows a done record; ignore if it does
		}
		wd.Enter()
		defer wd.Leave()
		if onDelta != nil && (r.Message.Content != "" || r.Message.Thinking != "") {
			onDelta(llm.Delta{Text: r.Message.Content, Thinking: r.Message.Thinking})
		}
		if r.Done {
			done = &r
		}
		return nil
	})
	wd.Stop()

	log := p.log.With(logKeyModel, req.Model)
	switch {
	case done != nil:
		// The reply is complete, even if ctx was cancelled while the
		// client read the end of the body.
		result = llm.Result{
			DoneReason: done.DoneReason,
			Usage: llm.Usage{
				PromptTokens:     done.PromptEvalCount,
				CompletionTokens: done.EvalCount,
			},
		}
		log.Debug("ollama stream done", logKeyDoneReason, result.DoneReason,
			logKeyEvalCount, result.Usage.CompletionTokens, logKeyDuration, time.Since(start))
		return result, nil
	case ctx.Err() != nil:
		return llm.Result{}, ctx.Err()
	}

	if cause := context.Cause(genCtx); errors.Is(cause, ErrFirstTokenTimeout) ||
		errors.Is(cause, ErrIdleTimeout) || errors.Is(cause, ErrTotalTimeout) {
		err = timeoutError(cause, &p.cfg)
		log.Warn("ollama stream cancelled by timeout", logKeyError, err, logKeyDuration, time.Since(start))
		return llm.Result{}, err
	}

	switch {
	case err != nil:
		err = p.classify(err)
	case st.status >= http.StatusBadRequest:
		// An error status whose body held no line: the client returns nil.
		err = statusOnlyError(st.status)
	case st.readErr != nil:
		err = &llm.Error{
			Code:    llm.CodeUpstreamError,
			Message: "the connection to Ollama broke before the reply was done",
			Err:     fmt.Errorf("%w: %w", llm.ErrIncomplete, st.readErr),
		}
	case st.eof:
		err = &llm.Error{
			Code:    llm.CodeUpstreamError,
			Message: "Ollama ended the stream without its done record",
			Err:     llm.ErrIncomplete,
		}
	default:
		// The client's scanner stopped without EOF or a read error: a
		// record longer than its 8 MB line limit.
		err = &llm.Error{
			Code:    llm.CodeUpstreamError,
			Message: "a record from Ollama exceeded the client's line limit",
			Err:     llm.ErrIncomplete,
		}
	}
	log.Debug("ollama stream failed", logKeyError, err, logKeyDuration, time.Since(start))
	return llm.Result{}, err
}

// Check asks the server for its version (/api/version).
func (p *Provider) Check(ctx context.Context) error {
	callCtx, cancel := context.WithTimeoutCause(ctx, p.cfg.IdleTimeout, errNoAnswer)
	defer cancel()
	v, err := p.client.Version(callCtx)
	if err != nil {
		return p.callError(ctx, callCtx, err)
	}
	p.log.Debug("ollama answers", logKeyBaseURL, p.base.Redacted(), logKeyVersion, v)
	return nil
}

// Models lists the models the server has (/api/tags), e.g.
// "llama3.2:latest", most recently modified first. /api/tags does not tell
// context windows; ContextLength does, per model.
func (p *Provider) Models(ctx context.Context) ([]llm.ModelInfo, error) {
	callCtx, cancel := context.WithTimeoutCause(ctx, p.cfg.IdleTimeout, errNoAnswer)
	defer cancel()
	list, err := p.client.List(callCtx)
	if err != nil {
		return nil, p.callError(ctx, callCtx, err)
	}
	models := make([]llm.ModelInfo, 0, len(list.Models))
	for _, m := range list.Models {
		models = append(models, llm.ModelInfo{Name: m.Name})
	}
	return models, nil
}

// DefaultNumCtx is the context window Ollama runs a model with when its
// Modelfile sets no num_ctx (and OLLAMA_CONTEXT_LENGTH is not set on the
// server): prompts longer than that are cut by Ollama itself.
const DefaultNumCtx = 4096

// ContextLength returns the context window Ollama runs model with: the
// num_ctx parameter of its Modelfile when set, else DefaultNumCtx, never
// more than the window it was trained for (/api/show's
// "<architecture>.context_length"). A server started with another
// OLLAMA_CONTEXT_LENGTH needs PARLEY_CONTEXT_TOKENS to say so.
func (p *Provider) ContextLength(ctx context.Context, model string) (int, error) {
	callCtx, cancel := context.WithTimeoutCause(ctx, p.cfg.IdleTimeout, errNoAnswer)
	defer cancel()
	resp, err := p.client.Show(callCtx, &api.ShowRequest{Model: model})
	if err != nil {
		return 0, p.callError(ctx, callCtx, err)
	}
	n := 0
	for k, v := range resp.ModelInfo {
		if strings.HasSuffix(k, ".context_length") {
			if f, ok := v.(float64); ok && f > 0 {
				n = int(f)
			}
		}
	}
	numCtx := DefaultNumCtx
	for _, line := range strings.Split(resp.Parameters, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "num_ctx" {
			if c, err := strconv.Atoi(f[1]); err == nil && c > 0 {
				numCtx = c
			}
		}
	}
	if n == 0 || numCtx < n {
		n = numCtx
	}
	return n, nil
}

// errNoAnswer is the cause set when a non-streaming call hits IdleTimeout.
var errNoAnswer = errors.New("no answer within the idle timeout")

// callError maps the error of a non-streaming call made with callCtx, which
// is ctx capped at IdleTimeout.
func (p *Provider) callError(ctx, callCtx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if context.Cause(callCtx) == errNoAnswer {
		return &llm.Error{
			Code:    llm.CodeUpstreamUnavailable,
			Message: fmt.Sprintf("Ollama at %s did not answer within %v", p.base.Redacted(), p.cfg.IdleTimeout),
			Err:     err,
		}
	}
	return p.classify(err)
}

package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/llm"
)

// Defaults for the zero values of Config.
const (
	DefaultTokensPerSecond = 50
	DefaultReplyTokens     = 120
	DefaultModel           = "sim"
	DefaultContextLength   = 8192
)

// maxLate is how late a token may fall behind its schedule before the
// schedule restarts from now. Up to it, a late wake-up is caught up, so
// the average rate holds; beyond it (a consumer that blocked), the stream
// goes on at its rate instead of bursting out the backlog.
const maxLate = 100 * time.Millisecond

// Log attribute keys.
const (
	logKeyModel      = "model"
	logKeyRequest    = "request"
	logKeyTokens     = "tokens"
	logKeyDoneReason = "done_reason"
	logKeyFault      = "fault"
	logKeyDuration   = "duration"
)

// Errors a Stream returns as the cause (Err) of its *llm.Error.
var (
	// ErrModelNotFound: the request names a model not in Config.Models.
	ErrModelNotFound = errors.New("sim: model not found")
	// ErrInjected: the failure was injected by Config.Faults.
	ErrInjected = errors.New("sim: injected fault")
)

// Config configures a Provider.
type Config struct {
	// TTFT is the time from the start of a request to its first token.
	// Zero value means no wait (unlike the other fields, whose zero means
	// a default); PARLEY_SIM_TTFT defaults to 200ms.
	TTFT time.Duration
	// TokensPerSecond is the pace of the stream after the first token.
	// math.Inf(1) sends tokens as fast as the callback takes them (for
	// benchmarks). Zero value means DefaultTokensPerSecond (50).
	TokensPerSecond float64
	// ReplyTokens is the length of every reply in tokens; a Request's
	// smaller MaxTokens shortens it (done reason "length"). Zero value
	// means DefaultReplyTokens (120).
	ReplyTokens int
	// Models are the model names the Provider answers to; Stream fails for
	// any other, as a real server does. Names match as llm.SameModel
	// does. Zero value means []string{DefaultModel}.
	Models []string
	// ContextLength is the context window Models and ContextLength
	// report for every model. Zero value means DefaultContextLength (8192).
	ContextLength int
	// Faults injects failures into chosen requests. Zero value means none.
	Faults Faults
	// Logger receives a debug record per stream and per injected fault.
	// Zero value means slog.Default().
	Logger *slog.Logger
	// Clock paces the streams. Zero value means the system clock.
	Clock Clock
}

// Provider is a deterministic simulated model. Create it with New.
type Provider struct {
	cfg      Config // defaults applied
	interval time.Duration
	models   []llm.ModelInfo
	log      *slog.Logger
	requests atomic.Uint64 // accepted requests so far: the number Faults choose by
}

var (
	_ llm.Provider     = (*Provider)(nil)
	_ llm.ContextSizer = (*Provider)(nil)
)

// New returns a Provider for cfg, or an error naming the setting that is
// out of range.
func New(cfg Config) (*Provider, error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, log: cfg.Logger}
	if !math.IsInf(cfg.TokensPerSecond, 1) {
		p.interval = time.Duration(float64(time.Second) / cfg.TokensPerSecond)
	}
	for _, m := range cfg.Models {
		p.models = append(p.models, llm.ModelInfo{Name: m, ContextLength: cfg.ContextLength})
	}
	return p, nil
}

func (c *Config) applyDefaults() error {
	switch {
	case c.TTFT < 0:
		return fmt.Errorf("sim: TTFT is negative (%v)", c.TTFT)
	case math.IsNaN(c.TokensPerSecond) || c.TokensPerSecond < 0:
		return fmt.Errorf("sim: TokensPerSecond is %v; want a positive rate", c.TokensPerSecond)
	case c.ReplyTokens < 0:
		return fmt.Errorf("sim: ReplyTokens is negative (%d)", c.ReplyTokens)
	case c.ContextLength < 0:
		return fmt.Errorf("sim: ContextLength is negative (%d)", c.ContextLength)
	}
	if err := c.Faults.Validate(); err != nil {
		return err
	}
	if c.TokensPerSecond == 0 {
		c.TokensPerSecond = DefaultTokensPerSecond
	}
	if !math.IsInf(c.TokensPerSecond, 1) && time.Duration(float64(time.Second)/c.TokensPerSecond) <= 0 {
		return fmt.Errorf("sim: TokensPerSecond %v is too high; use math.Inf(1) for no pacing", c.TokensPerSecond)
	}
	if c.ReplyTokens == 0 {
		c.ReplyTokens = DefaultReplyTokens
	}
	if c.ContextLength == 0 {
		c.ContextLength = DefaultContextLength
	}
	if len(c.Models) == 0 {
		c.Models = []string{DefaultModel}
	} else {
		c.Models = slices.Clone(c.Models)
	}
	for _, m := range c.Models {
		if m == "" {
			return errors.New("sim: Models has an empty name")
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return nil
}

// Name returns "sim", which generation.started records as the provider.
func (p *Provider) Name() string { return "sim" }

// Config returns the Provider's configuration with defaults applied, for
// logs and /readyz details. Logger and Clock are left out.
func (p *Provider) Config() Config {
	c := p.cfg
	c.Models = slices.Clone(c.Models)
	c.Logger, c.Clock = nil, nil
	return c
}

// Check returns nil: the simulated model always answers.
func (p *Provider) Check(context.Context) error { return nil }

// Models lists Config.Models, each with Config.ContextLength.
func (p *Provider) Models(context.Context) ([]llm.ModelInfo, error) {
	return slices.Clone(p.models), nil
}

// ContextLength returns Config.ContextLength for a model in Config.Models
// and the Stream's "model not found" error for any other.
func (p *Provider) ContextLength(_ context.Context, model string) (int, error) {
	if !p.hasModel(model) {
		return 0, notFound(model)
	}
	return p.cfg.ContextLength, nil
}

func (p *Provider) hasModel(name string) bool {
	return slices.ContainsFunc(p.cfg.Models, func(m string) bool { return llm.SameModel(m, name) })
}

func notFound(model string) error {
	return &llm.Error{Code: llm.CodeUpstreamError, Message: fmt.Sprintf("model %q not found", model), Err: ErrModelNotFound}
}

// Stream plays the simulated reply to req: Config.ReplyTokens tokens (or
// req.MaxTokens, when smaller), the first after TTFT and the rest at
// TokensPerSecond, unless Config.Faults says otherwise for this request.
// The reply text depends only on req's model and messages. See
// llm.Provider for the contract: onDelta runs on the calling goroutine,
// and when ctx ends Stream returns ctx.Err() at once.
func (p *Provider) Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (llm.Result, error) {
	if req.Model == "" {
		return llm.Result{}, errors.New("sim: request has no model")
	}
	if len(req.Messages) == 0 {
		return llm.Result{}, errors.New("sim: request has no messages")
	}
	if err := ctx.Err(); err != nil {
		return llm.Result{}, err
	}
	if !p.hasModel(req.Model) {
		return llm.Result{}, notFound(req.Model)
	}
	n := p.requests.Add(1)
	plan := p.cfg.Faults.plan(n)
	if plan.unavailable {
		p.debug("sim: injected fault", &req, n, logKeyFault, "unavailable")
		return llm.Result{}, &llm.Error{
			Code:       llm.CodeUpstreamUnavailable,
			Message:    "the simulated model server is unavailable (injected fault)",
			Err:        ErrInjected,
			Retryable:  true,
			RetryAfter: p.cfg.Faults.RetryAfter,
		}
	}

	total, reason := p.cfg.ReplyTokens, "stop"
	if req.MaxTokens > 0 && req.MaxTokens < total {
		total, reason = req.MaxTokens, "length"
	}
	seed := seedOf(&req)
	s := stream{
		p:     p,
		ctx:   ctx,
		text:  newTextGen(seed),
		split: splitter{rng{^seed}},
		emit:  onDelta,
	}
	if s.emit == nil {
		s.emit = func(llm.Delta) {}
	}
	defer s.stop()

	start := p.cfg.Clock.Now()
	s.next = start.Add(p.cfg.TTFT)
	for i := 0; ; i++ {
		if i == plan.pauseAt {
			s.next = s.next.Add(p.cfg.Faults.PauseFor)
		}
		if i == total {
			break
		}
		if err := s.wait(); err != nil {
			return llm.Result{}, err
		}
		switch {
		case i == plan.cutAt:
			s.flush()
			p.debug("sim: injected fault", &req, n, logKeyFault, "cut", logKeyTokens, i)
			return llm.Result{}, &llm.Error{
				Code:    llm.CodeUpstreamError,
				Message: "the simulated model server ended the stream without its final record (injected fault)",
				Err:     fmt.Errorf("%w (%w)", llm.ErrIncomplete, ErrInjected),
			}
		case i == plan.errorAt:
			s.flush()
			p.debug("sim: injected fault", &req, n, logKeyFault, "error", logKeyTokens, i)
			msg := "the simulated model failed mid-stream (injected fault)"
			if i == 0 {
				msg = "the simulated model failed before its first token (injected fault)"
			}
			return llm.Result{}, &llm.Error{
				Code:      llm.CodeUpstreamError,
				Message:   msg,
				Err:       ErrInjected,
				Retryable: i == 0,
			}
		}
		s.token(s.text.next(i == total-1 && reason == "stop"))
	}
	s.flush()
	p.debug("sim stream done", &req, n, logKeyDoneReason, reason, logKeyTokens, total,
		logKeyDuration, p.cfg.Clock.Now().Sub(start))
	return llm.Result{
		DoneReason: reason,
		Usage:      llm.Usage{PromptTokens: promptTokens(req.Messages), CompletionTokens: total},
	}, nil
}

// debug logs a record about request n, building nothing when debug
// records are off (a load test runs many streams).
func (p *Provider) debug(msg string, req *llm.Request, n uint64, args ...any) {
	if !p.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	p.log.Debug(msg, append([]any{logKeyModel, req.Model, logKeyRequest, n}, args...)...)
}

// stream is the state of one Stream call: its schedule, its one timer,
// and the tail of a token split across two deltas.
type stream struct {
	p     *Provider
	ctx   context.Context
	text  textGen
	split splitter
	emit  func(llm.Delta)
	next  time.Time // when the next token is due
	timer Timer     // created on the first wait that needs one
	carry string    // the rest of a split token, sent with the next delta
}

// wait blocks until the next token is due or ctx ends, and moves the
// schedule on by one token.
func (s *stream) wait() error {
	clock := s.p.cfg.Clock
	now := clock.Now()
	if d := s.next.Sub(now); d > 0 {
		if s.timer == nil {
			s.timer = clock.NewTimer(d)
		} else {
			s.timer.Reset(d)
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-s.timer.C():
		}
		now = clock.Now()
	} else if err := s.ctx.Err(); err != nil {
		return err
	}
	if now.Sub(s.next) > maxLate {
		s.next = now
	}
	s.next = s.next.Add(s.p.interval)
	return nil
}

// token sends one token, joined to the tail of the previous one if that
// was split, and perhaps split itself.
func (s *stream) token(tok string) {
	text, rest := tok, ""
	if cut := s.split.cut(tok); cut > 0 {
		text, rest = tok[:cut], tok[cut:]
	}
	if s.carry != "" {
		text = s.carry + text // the only allocation, and only after a split
	}
	s.carry = rest
	s.emit(llm.Delta{Text: text})
}

// flush sends the tail of a split token, if one is pending.
func (s *stream) flush() {
	if s.carry != "" {
		s.emit(llm.Delta{Text: s.carry})
		s.carry = ""
	}
}

func (s *stream) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/llm"
)

// DefaultContextTokens is the context window assumed for a model whose
// window is neither configured nor reported by its server. It is
// Ollama's default num_ctx.
const DefaultContextTokens = 4096

// catalog caches what the provider says about its models: the list (for
// GET /v1/models and for refusing unknown models at create) and each
// model's context window. Its methods may call the model server, bounded
// by lookupTimeout, and are safe for concurrent use.
type catalog struct {
	prov     llm.Provider
	log      *slog.Logger
	override int // configured window; 0: ask the provider
	ttl      time.Duration
	now      func() time.Time

	mu      sync.Mutex
	list    []llm.ModelInfo
	listErr error
	listAt  time.Time
	windows map[string]windowEntry // by llm.ModelKey
}

// windowEntry is a model's context window as looked up at a time; a
// lookup that failed (guessed) is tried again after the catalog's TTL.
type windowEntry struct {
	tokens  int
	guessed bool
	at      time.Time
}

const (
	// catalogTTL is how long a model list is trusted; a failed lookup is
	// retried after a fifth of it.
	catalogTTL = 30 * time.Second
	// lookupTimeout bounds one call to the model server for the catalog.
	lookupTimeout = 3 * time.Second
)

func newCatalog(prov llm.Provider, override int, log *slog.Logger, now func() time.Time) *catalog {
	return &catalog{prov: prov, override: override, log: log, ttl: catalogTTL, now: now, windows: make(map[string]windowEntry)}
}

// models returns the provider's models, from the cache when it is fresh.
func (c *catalog) models(ctx context.Context) ([]llm.ModelInfo, error) {
	c.mu.Lock()
	age := c.now().Sub(c.listAt)
	if !c.listAt.IsZero() && (age < c.ttl && c.listErr == nil || age < c.ttl/5) {
		list, err := c.list, c.listErr
		c.mu.Unlock()
		return list, err
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	list, err := c.prov.Models(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list, c.listErr, c.listAt = list, err, c.now()
	for _, m := range list {
		if m.ContextLength > 0 {
			c.windows[llm.ModelKey(m.Name)] = windowEntry{tokens: m.ContextLength, at: c.listAt}
		}
	}
	return list, err
}

// check refuses a model the provider does not offer. When the provider
// cannot be asked (it is down) or lists nothing, the model is let through:
// the send then fails with the server's own answer.
func (c *catalog) check(ctx context.Context, model string) *Error {
	list, err := c.models(ctx)
	if err != nil {
		c.log.Warn("model list not available; not checking the model name", slog.String("model", model), slog.Any(logKeyError, err))
		return nil
	}
	if len(list) == 0 {
		return nil
	}
	for _, m := range list {
		if llm.SameModel(m.Name, model) {
			return nil
		}
	}
	names := make([]string, 0, min(len(list), 10))
	for _, m := range list[:min(len(list), 10)] {
		names = append(names, m.Name)
	}
	return Errorf(CodeBadRequest, "unknown model %q: the %s server offers %v (GET /v1/models lists them all)", model, c.prov.Name(), names)
}

// window returns model's context window in tokens: the configured one,
// else what the server reports, else DefaultContextTokens.
func (c *catalog) window(ctx context.Context, model string) int {
	if c.override > 0 {
		return c.override
	}
	key := llm.ModelKey(model)
	c.mu.Lock()
	e, ok := c.windows[key]
	c.mu.Unlock()
	if ok && (!e.guessed || c.now().Sub(e.at) < c.ttl) {
		return e.tokens
	}
	e = windowEntry{tokens: DefaultContextTokens, guessed: true, at: c.now()}
	if sizer, ok := c.prov.(llm.ContextSizer); ok {
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
		got, err := sizer.ContextLength(ctx, model)
		switch {
		case err != nil:
			c.log.Warn("context window not known; assuming the default for a while", slog.String("model", model),
				slog.Int("tokens", DefaultContextTokens), slog.Any(logKeyError, err))
		case got > 0:
			e.tokens, e.guessed = got, false
		}
	}
	c.mu.Lock()
	c.windows[key] = e
	c.mu.Unlock()
	return e.tokens
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/gateway"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/ollama"
	"github.com/parleyhq/parley/llm/openai"
	"github.com/parleyhq/parley/llm/sim"
)

// eventLog is a connection to JetStream: embedded or external.
type eventLog struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	embedded *events.Embedded // nil when external
	lock     *dataLock        // held while the embedded server runs
	url      string           // where tools can reach it, "" if nowhere
}

func (l *eventLog) Close() {
	if l.nc != nil {
		_ = l.nc.Drain()
		l.nc.Close()
	}
	if l.embedded != nil {
		l.embedded.Shutdown()
	}
	if l.lock != nil {
		l.lock.Release()
	}
}

// openEventLog connects to PARLEY_NATS_URL, or starts the embedded server
// on the data dir. listen is the embedded server's client listener.
func openEventLog(cfg config.Config, listen string, log *slog.Logger) (*eventLog, error) {
	if cfg.NATSURL != "" {
		nc, err := nats.Connect(cfg.NATSURL, nats.Name("parley"), nats.MaxReconnects(-1))
		if err != nil {
			return nil, fmt.Errorf("connect to NATS at %s (PARLEY_NATS_URL): %w", cfg.NATSURL, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, err
		}
		return &eventLog{nc: nc, js: js, url: cfg.NATSURL}, nil
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	emb, err := events.StartEmbedded(events.EmbeddedConfig{StoreDir: cfg.DataDir, Listen: listen, SyncInterval: cfg.SyncInterval, Logger: log})
	if err != nil {
		lock.Release()
		return nil, err
	}
	nc, err := emb.Connect()
	if err != nil {
		emb.Shutdown()
		lock.Release()
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		emb.Shutdown()
		lock.Release()
		return nil, err
	}
	return &eventLog{nc: nc, js: js, embedded: emb, lock: lock, url: emb.ClientURL()}, nil
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, fs, err := loadConfig("serve", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	log := newLogger(cfg, stderr)
	log.Debug("configuration", slog.Any("config", cfg))

	natsListen := cfg.NATSListen
	if cfg.NATSURL == "" && natsListen != "" && !portFree(natsListen) {
		log.Warn("the embedded NATS listener's port is taken; running without it (parley replay then needs the server stopped)",
			slog.String("PARLEY_NATS_LISTEN", natsListen))
		natsListen = ""
	}
	el, err := openEventLog(cfg, natsListen, log)
	if err != nil {
		return err
	}
	defer el.Close()

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := events.NewJetStreamStore(startCtx, el.js, events.JetStreamConfig{})
	if err != nil {
		return err
	}

	ms, err := openModelServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer ms.close()

	maxReply := cfg.MaxReplyBytes
	if fit := actors.MaxReplyBytesFor(el.nc.MaxPayload()); fit < maxReply {
		log.Warn("lowering the reply cap to what one NATS message holds; raise max_payload on the NATS servers to allow longer replies",
			slog.Int("PARLEY_MAX_REPLY_BYTES", cfg.MaxReplyBytes), slog.Int("max_reply_bytes", fit), slog.Int64("max_payload", el.nc.MaxPayload()))
		maxReply = fit
	}
	sys, err := actors.New(actors.Config{
		Store: store, Index: store, Snapshots: store, Provider: ms.prov, DefaultModel: cfg.DefaultModel(),
		Concurrency:   cfg.ProviderConcurrency(),
		Retry:         actors.RetryPolicy{Retries: cfg.UpstreamRetries},
		ContextTokens: cfg.ContextTokens,
		MaxReplyBytes: maxReply,
		Titles:        cfg.Titles,
		ChunkInterval: cfg.ChunkInterval, ChunkBytes: cfg.ChunkBytes,
		SessionIdleTimeout: cfg.SessionIdleTimeout, Logger: log,
	})
	if err != nil {
		return err
	}
	recoverCtx, cancelRecover := context.WithTimeout(ctx, 30*time.Second)
	if _, err := sys.RecoverInterrupted(recoverCtx); err != nil {
		log.Warn("some interrupted sessions were not recovered at start; they will be on first use", slog.Any("error", err))
	}
	cancelRecover()
	srv, err := gateway.New(gateway.Config{
		Listen: cfg.Listen,
		System: sys,
		Auth: gateway.AuthConfig{
			Required:  cfg.Auth == config.AuthToken,
			APIKeys:   cfg.APIKeys,
			JWTSecret: []byte(cfg.JWTSecret),
		},
		MaxFrameBytes: cfg.MaxFrameBytes,
		PingInterval:  cfg.WSPingInterval,
		IdleTimeout:   cfg.WSIdleTimeout,
		CommandRate:   float64(cfg.WSCommandRate),
		CommandBurst:  cfg.WSCommandBurst,
		Alive: func() error {
			if el.nc.IsClosed() {
				return errors.New("the NATS connection is closed for good; restart the process")
			}
			return nil
		},
		Ready: func(ctx context.Context) error {
			if !el.nc.IsConnected() {
				return errors.New("not connected to NATS")
			}
			if _, err := el.js.AccountInfo(ctx); err != nil {
				return fmt.Errorf("JetStream: %w", err)
			}
			return nil
		},
		Details: func() map[string]any { return ms.details },
		Logger:  log,
	})
	if err != nil {
		_ = sys.Shutdown(context.Background())
		return err
	}
	if err := srv.Start(); err != nil {
		_ = sys.Shutdown(context.Background())
		return err
	}

	natsDesc := "embedded NATS (in-process only)"
	switch {
	case cfg.NATSURL != "":
		natsDesc = "NATS " + redactURL(cfg.NATSURL)
	case el.url != "":
		natsDesc = "embedded NATS " + el.url
	}
	dataDesc := cfg.DataDir
	if cfg.NATSURL != "" {
		dataDesc = "(external NATS)"
	}
	fmt.Fprintf(stdout, "parley listening on http://%s  data %s  %s  model server %s (model %s)%s\n",
		srv.Addr(), dataDesc, natsDesc, ms.desc, cfg.DefaultModel(), ms.note)

	<-ctx.Done()
	log.Info("shutting down", slog.Duration("grace", cfg.ShutdownTimeout))
	shutCtx, cancelShut := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelShut()
	srv.Drain()
	var errs []error
	if err := sys.Drain(shutCtx); err != nil {
		errs = append(errs, err)
	}
	if err := srv.Shutdown(shutCtx); err != nil {
		errs = append(errs, err)
	}
	if err := sys.Shutdown(shutCtx); err != nil {
		errs = append(errs, err)
	}
	el.Close()
	el.nc, el.embedded, el.lock = nil, nil, nil
	if len(errs) > 0 {
		return fmt.Errorf("shutdown: %w", errors.Join(errs...))
	}
	log.Info("stopped cleanly")
	return nil
}

// modelServer is the provider serve runs with and how it is announced.
type modelServer struct {
	prov llm.Provider
	// desc names it on the start line: "ollama http://…" or
	// "sim [simulated replies]".
	desc string
	// note ends the start line with a problem found at start, or is "".
	note string
	// details go into every /readyz body; read-only once built.
	details map[string]any
	close   func()
}

// remoteServer is a provider behind a URL, which serve describes on the
// start line, checks at start, and closes.
type remoteServer interface {
	llm.Provider
	BaseURL() string
	Close() error
}

// openModelServer builds the provider PARLEY_PROVIDER names. Nothing else
// is ever substituted for it: when Ollama does not answer, serve says so
// and suggests the simulated model, and still uses Ollama.
func openModelServer(ctx context.Context, cfg config.Config, log *slog.Logger) (*modelServer, error) {
	var (
		prov remoteServer
		err  error
	)
	switch cfg.Provider {
	case config.ProviderSim:
		return openSim(cfg, log)
	case config.ProviderOpenAI:
		prov, err = openai.New(openai.Config{
			BaseURL:           cfg.OpenAIBaseURL,
			APIKey:            cfg.OpenAIAPIKey,
			ConnectTimeout:    cfg.UpstreamConnectTimeout,
			FirstTokenTimeout: cfg.UpstreamFirstTokenTimeout,
			IdleTimeout:       cfg.UpstreamIdleTimeout,
			TotalTimeout:      cfg.UpstreamTotalTimeout,
			Logger:            log,
		})
	default:
		prov, err = ollama.New(ollama.Config{
			BaseURL:           cfg.OllamaHost,
			ConnectTimeout:    cfg.UpstreamConnectTimeout,
			FirstTokenTimeout: cfg.UpstreamFirstTokenTimeout,
			IdleTimeout:       cfg.UpstreamIdleTimeout,
			TotalTimeout:      cfg.UpstreamTotalTimeout,
			Logger:            log,
		})
	}
	if err != nil {
		return nil, err
	}
	return &modelServer{
		prov:    prov,
		desc:    prov.Name() + " " + prov.BaseURL(),
		note:    checkModelServer(ctx, prov, cfg, log),
		details: map[string]any{"provider": prov.Name(), "simulated": false, "model_server": prov.BaseURL(), "model": cfg.DefaultModel()},
		close:   func() { _ = prov.Close() },
	}, nil
}

// openSim builds the simulated model and announces it: a warning at
// start, the start line, and "simulated": true in /readyz (every
// generation.started records provider "sim" too). It answers to
// PARLEY_MODEL's name, so that sessions work without changing it, and to
// "sim".
func openSim(cfg config.Config, log *slog.Logger) (*modelServer, error) {
	models := []string{cfg.DefaultModel()}
	if !llm.SameModel(cfg.DefaultModel(), sim.DefaultModel) {
		models = append(models, sim.DefaultModel)
	}
	prov, err := sim.New(sim.Config{
		TTFT:            cfg.SimTTFT,
		TokensPerSecond: cfg.SimTokensPerSecond,
		ReplyTokens:     cfg.SimReplyTokens,
		Models:          models,
		Faults:          cfg.SimFaults,
		Logger:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("simulated model (PARLEY_PROVIDER=sim): %w", err)
	}
	log.Warn("PARLEY_PROVIDER=sim: replies are SIMULATED by a deterministic fake model, not generated by any language model; "+
		"use it for demos and load tests only",
		slog.Any("models", models),
		slog.Duration("PARLEY_SIM_TTFT", cfg.SimTTFT),
		slog.Float64("PARLEY_SIM_TOKENS_PER_SECOND", cfg.SimTokensPerSecond),
		slog.Int("PARLEY_SIM_REPLY_TOKENS", cfg.SimReplyTokens),
		slog.String("PARLEY_SIM_FAULTS", cfg.SimFaults.String()))
	return &modelServer{
		prov: prov,
		desc: prov.Name() + " [simulated replies]",
		details: map[string]any{
			"provider":  prov.Name(),
			"simulated": true,
			"model":     cfg.DefaultModel(),
			"models":    models,
			"sim": map[string]any{
				"ttft_ms":           cfg.SimTTFT.Milliseconds(),
				"tokens_per_second": cfg.SimTokensPerSecond,
				"reply_tokens":      cfg.SimReplyTokens,
				"faults":            cfg.SimFaults.String(),
			},
		},
		close: func() {},
	}, nil
}

// checkModelServer asks the model server whether it answers and has the
// default model. Neither is fatal: Parley serves history without it and
// reports upstream_unavailable on sends. It returns a note for the start
// line.
func checkModelServer(ctx context.Context, prov remoteServer, cfg config.Config, log *slog.Logger) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// Where the server is configured, and how to get the model.
	urlVar, start, fix, pull := "OLLAMA_HOST", "Start Ollama (`ollama serve`) or point OLLAMA_HOST at it",
		"Check OLLAMA_HOST", "run `ollama pull "+cfg.DefaultModel()+"` or set PARLEY_MODEL"
	if cfg.Provider == config.ProviderOpenAI {
		urlVar, start, fix, pull = "PARLEY_OPENAI_BASE_URL", "Check PARLEY_OPENAI_BASE_URL",
			"Check PARLEY_OPENAI_API_KEY (or OPENAI_API_KEY) and PARLEY_OPENAI_BASE_URL", "set PARLEY_MODEL to one the server lists"
	}
	if err := prov.Check(ctx); err != nil {
		if llm.CodeOf(err) == llm.CodeUpstreamError {
			// It answered, with an error status (a wrong API key, say).
			log.Warn("the model server refused the check; chats will fail until that is fixed. "+fix,
				slog.String(urlVar, prov.BaseURL()), slog.Any("error", err))
			return "  [model server refused: " + checkStatus(err) + "]"
		}
		log.Warn("the model server does not answer; chats will fail with upstream_unavailable until it does. "+start+"; "+
			"for a demo without a model, run with PARLEY_PROVIDER=sim (simulated replies, labelled as such)",
			slog.String(urlVar, prov.BaseURL()), slog.Any("error", err))
		return "  [model server not answering]"
	}
	models, err := prov.Models(ctx)
	if err != nil {
		return ""
	}
	if !hasModel(models, cfg.DefaultModel()) {
		names := make([]string, 0, len(models))
		for _, m := range models {
			names = append(names, m.Name)
		}
		log.Warn("the model server does not have the default model; "+pull,
			slog.String("PARLEY_MODEL", cfg.DefaultModel()), slog.String("available", strings.Join(names, ", ")))
		return "  [model " + cfg.DefaultModel() + " not found]"
	}
	return ""
}

// checkStatus is the HTTP status of a refused check, or "error".
func checkStatus(err error) string {
	var se *openai.StatusError
	if errors.As(err, &se) && se.Status != "" {
		return se.Status
	}
	return "error"
}

// hasModel matches Ollama names, where "x" means "x:latest".
func hasModel(models []llm.ModelInfo, name string) bool {
	return slices.ContainsFunc(models, func(m llm.ModelInfo) bool { return llm.SameModel(m.Name, name) })
}

// redactURL hides credentials in a NATS URL.
func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "***" + s[i:]
		}
	}
	return s
}

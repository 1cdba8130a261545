package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/parleyhq/parley/llm/sim"
)

// AuthMode is how clients prove who they are (PARLEY_AUTH).
type AuthMode string

// Accepted AuthMode values.
const (
	// AuthNone makes every request user "local". Validate refuses it unless
	// Listen is a loopback address.
	AuthNone AuthMode = "none"
	// AuthToken requires a bearer token: a static API key (APIKeys) or an
	// HS256 JWT signed with JWTSecret.
	AuthToken AuthMode = "token"
)

// LogFormat is the log output format (PARLEY_LOG_FORMAT).
type LogFormat string

// Accepted LogFormat values.
const (
	LogFormatText LogFormat = "text" // slog.TextHandler
	LogFormatJSON LogFormat = "json" // slog.JSONHandler
)

// Provider names accepted in PARLEY_PROVIDER.
const (
	ProviderOllama = "ollama"
	// ProviderOpenAI is any OpenAI-compatible /v1/chat/completions
	// endpoint (OpenAI, vLLM, llama.cpp's server, OpenRouter, Groq,
	// Ollama's /v1), at OpenAIBaseURL.
	ProviderOpenAI = "openai"
	// ProviderSim is the deterministic simulated model (llm/sim), for load
	// tests and demos. It is only ever chosen explicitly.
	ProviderSim = "sim"
)

// providers lists the accepted PARLEY_PROVIDER values, in the order the
// error message shows them. Adding a provider is one line here.
var providers = []string{
	ProviderOllama,
	ProviderOpenAI,
	ProviderSim,
}

// ProviderConcurrency is the number of generations per model that the
// provider takes at once when PARLEY_UPSTREAM_CONCURRENCY is 0: 1 for
// Ollama (its OLLAMA_NUM_PARALLEL default), 16 for a hosted
// OpenAI-compatible API, and no limit (0) for the simulated model.
func (c Config) ProviderConcurrency() int {
	if c.UpstreamConcurrency > 0 {
		return c.UpstreamConcurrency
	}
	switch c.Provider {
	case ProviderOllama:
		return 1
	case ProviderSim:
		return 0
	}
	return 16
}

// DefaultModel is the model of sessions created without one: Model, or
// when that is empty the provider's own default.
func (c Config) DefaultModel() string {
	if c.Model != "" {
		return c.Model
	}
	switch c.Provider {
	case ProviderOpenAI:
		return "gpt-4o-mini"
	case ProviderSim:
		return "sim"
	}
	return "llama3.2"
}

// Config is Parley's whole configuration. Get one from Default or FromEnv,
// optionally let flags override it (RegisterFlags), then call Validate before
// using it. Each field names the environment variable that sets it.
//
// A Config is a plain value: copy it freely; nothing in it is shared except
// the APIKeys map, which must not be modified after Validate.
type Config struct {
	// Listen is the HTTP address (host:port) for the API, WebSocket, SSE and
	// web UI. PARLEY_LISTEN; when that is unset and PORT is set (as on
	// Render), it is 0.0.0.0:$PORT. Default 127.0.0.1:8080. Port 0 picks a
	// free port. Zero value is invalid.
	Listen string

	// DataDir holds the embedded NATS server's JetStream files.
	// PARLEY_DATA_DIR. Default ./data. Zero value is invalid.
	DataDir string

	// NATSURL is the external NATS cluster to join (one URL or a
	// comma-separated list). PARLEY_NATS_URL. Zero value means run an
	// embedded NATS server with JetStream under DataDir.
	NATSURL string

	// NATSListen is the client listener (host:port) of the embedded NATS
	// server, so that `parley replay` and the `nats` CLI can read a running
	// server. PARLEY_NATS_LISTEN; the word "off" sets it to "". Default
	// 127.0.0.1:4222. Zero value means no listener (in-process connections
	// only). Validate refuses a non-loopback address: the embedded server
	// has no auth of its own. Ignored when NATSURL is set.
	NATSListen string

	// SyncInterval is how often JetStream fsyncs its files: a crash of the
	// machine (not just the process) can lose up to this much acknowledged
	// data. PARLEY_SYNC_INTERVAL. Default 1s (JetStream's own default is
	// 2m). Zero value is invalid.
	SyncInterval time.Duration

	// Provider is the model provider for new generations: "ollama",
	// "openai", or "sim" for the simulated model (load tests and demos;
	// replies are labelled as simulated). PARLEY_PROVIDER. Default
	// "ollama". Zero value is invalid.
	Provider string

	// OllamaHost is the base URL of the Ollama server, always in the form
	// scheme://host:port[/path]. OLLAMA_HOST, read as Ollama itself reads
	// it: "127.0.0.1:11434", "0.0.0.0", "localhost" or "http://box:11434"
	// all work; a missing port is 11434 (80/443 when a scheme is given), and
	// an unspecified address (0.0.0.0, ::) means loopback. Default
	// http://127.0.0.1:11434. Zero value is invalid.
	OllamaHost string

	// OpenAIBaseURL is the base URL of the OpenAI-compatible API, up to and
	// including its version path: https://api.openai.com/v1,
	// https://openrouter.ai/api/v1, http://127.0.0.1:11434/v1 (Ollama),
	// http://127.0.0.1:8000/v1 (vLLM). Used with Provider "openai".
	// PARLEY_OPENAI_BASE_URL. Default https://api.openai.com/v1. Zero value
	// is invalid.
	OpenAIBaseURL string

	// OpenAIAPIKey is sent as a bearer token to OpenAIBaseURL.
	// PARLEY_OPENAI_API_KEY, or OPENAI_API_KEY when that is unset. Required
	// for api.openai.com; local servers usually need none. Zero value
	// means no Authorization header. Secret: never logged or echoed in
	// errors, and has no flag.
	OpenAIAPIKey string

	// Model is the model for new sessions that do not name one.
	// PARLEY_MODEL. Default "", which means the provider's default (see
	// DefaultModel): llama3.2 for Ollama, gpt-4o-mini for OpenAI, sim for
	// the simulated model.
	Model string

	// UpstreamConnectTimeout bounds dialling the model server (TCP and TLS).
	// PARLEY_UPSTREAM_CONNECT_TIMEOUT. Default 5s. Zero value is invalid.
	UpstreamConnectTimeout time.Duration

	// UpstreamFirstTokenTimeout bounds the wait from the request to the first
	// token; it covers model loading and prompt processing, so it is long.
	// PARLEY_UPSTREAM_FIRST_TOKEN_TIMEOUT. Default 5m. Zero value is invalid.
	UpstreamFirstTokenTimeout time.Duration

	// UpstreamIdleTimeout bounds the gap between two tokens of a stream.
	// PARLEY_UPSTREAM_IDLE_TIMEOUT. Default 2m. Zero value is invalid.
	UpstreamIdleTimeout time.Duration

	// UpstreamTotalTimeout bounds one whole generation.
	// PARLEY_UPSTREAM_TOTAL_TIMEOUT. Default 100m. Zero value is invalid.
	UpstreamTotalTimeout time.Duration

	// UpstreamConcurrency is how many generations run at once per model;
	// the rest wait in line, first come first served, and their clients
	// see their place. PARLEY_UPSTREAM_CONCURRENCY. Default 0, which means
	// the provider's default (ProviderConcurrency).
	UpstreamConcurrency int

	// UpstreamRetries is how many times a request the model server refused
	// before any output (connection refused, 429, 5xx) is tried again, with
	// backoff (honouring Retry-After). A reply that showed text is never
	// retried. PARLEY_UPSTREAM_RETRIES. Default 3; 0 means none.
	UpstreamRetries int

	// ContextTokens is the context window the history sent upstream is
	// trimmed to. PARLEY_CONTEXT_TOKENS. Default 0, which means what the
	// model server reports for the model, else 4096.
	ContextTokens int

	// MaxReplyBytes caps one reply, text and reasoning together; a longer
	// one ends as generation.failed with code too_large, its text kept.
	// The terminal event carries the whole reply in one NATS message, so
	// serve lowers the cap to what the server's max_payload holds (the
	// embedded server takes 8 MiB). PARLEY_MAX_REPLY_BYTES. Default 1 MiB.
	MaxReplyBytes int

	// Titles gives each untitled session a title made by the model after
	// its first completed turn. PARLEY_TITLES. Default true.
	Titles bool

	// SimTTFT is the simulated model's time to first token; used only
	// with Provider "sim", like the other Sim fields. PARLEY_SIM_TTFT.
	// Default 200ms. Zero value means no wait.
	SimTTFT time.Duration

	// SimTokensPerSecond is the simulated model's pace after the first
	// token. PARLEY_SIM_TOKENS_PER_SECOND. Default 50. Zero value is
	// invalid.
	SimTokensPerSecond float64

	// SimReplyTokens is the length of every simulated reply, in tokens.
	// PARLEY_SIM_REPLY_TOKENS. Default 120. Zero value is invalid.
	SimReplyTokens int

	// SimFaults injects failures into simulated replies (see
	// sim.ParseFaults for the spec, e.g. "unavailable_every=10,cut_after=50").
	// PARLEY_SIM_FAULTS. Default none, which is also the zero value.
	SimFaults sim.Faults

	// Auth is the client auth mode. PARLEY_AUTH. Default AuthNone, which
	// Validate accepts only on a loopback Listen address. Zero value is
	// invalid.
	Auth AuthMode

	// APIKeys maps each static API key to its user id. PARLEY_API_KEYS as
	// "key:user,key:user". Only used with AuthToken. Zero value means no
	// static keys. Secret: never logged or echoed in errors.
	APIKeys map[string]string

	// JWTSecret is the HS256 key for bearer JWTs (whose "sub" is the user
	// id), at least 32 bytes. PARLEY_JWT_SECRET. Only used with AuthToken.
	// Zero value means JWTs are not accepted. Secret.
	JWTSecret string

	// MaxFrameBytes is the largest WebSocket frame a client may send; a
	// larger one closes the socket with status 1009.
	// PARLEY_MAX_FRAME_BYTES. Default 65536, at least 1024. Zero value is
	// invalid.
	MaxFrameBytes int

	// WSPingInterval is how often the server pings each WebSocket.
	// PARLEY_WS_PING_INTERVAL. Default 25s. Zero value is invalid.
	WSPingInterval time.Duration

	// WSIdleTimeout closes a WebSocket silent for this long; it must exceed
	// WSPingInterval. PARLEY_WS_IDLE_TIMEOUT. Default 75s. Zero value is
	// invalid.
	WSIdleTimeout time.Duration

	// WSCommandRate and WSCommandBurst bound the frames one WebSocket
	// client may send: on average WSCommandRate a second, at most
	// WSCommandBurst at once; the rest are dropped, each answered
	// rate_limited. PARLEY_WS_COMMAND_RATE (default 20) and
	// PARLEY_WS_COMMAND_BURST (default 60).
	WSCommandRate  int
	WSCommandBurst int

	// ChunkInterval is the longest a running reply goes unpersisted: its
	// text is appended as a generation.chunk slice at least this often.
	// PARLEY_CHUNK_INTERVAL. Default 250ms. Zero value is invalid.
	ChunkInterval time.Duration

	// ChunkBytes persists a generation.chunk slice as soon as this many
	// bytes of reply are pending, even before ChunkInterval.
	// PARLEY_CHUNK_BYTES. Default 4096. Zero value is invalid.
	ChunkBytes int

	// SessionIdleTimeout passivates a session actor with no attached
	// connection and no generation after this long.
	// PARLEY_SESSION_IDLE_TIMEOUT. Default 5m. Zero value is invalid.
	SessionIdleTimeout time.Duration

	// ShutdownTimeout bounds graceful shutdown after SIGTERM; the default
	// fits inside Render's 30 s grace period. PARLEY_SHUTDOWN_TIMEOUT.
	// Default 25s. Zero value is invalid.
	ShutdownTimeout time.Duration

	// LogLevel is the minimum level logged: debug, info, warn or error.
	// PARLEY_LOG_LEVEL. Default info (which is also the zero value).
	LogLevel slog.Level

	// LogFormat is the log output format. PARLEY_LOG_FORMAT. Default text.
	// Zero value is invalid.
	LogFormat LogFormat
}

// Default returns the configuration that runs on a laptop: everything on
// loopback, an embedded NATS under ./data, Ollama on its default port, no
// auth. It passes Validate.
func Default() Config {
	return Config{
		Listen:                    "127.0.0.1:8080",
		DataDir:                   "./data",
		NATSURL:                   "",
		NATSListen:                "127.0.0.1:4222",
		SyncInterval:              time.Second,
		Provider:                  ProviderOllama,
		OllamaHost:                "http://127.0.0.1:11434",
		OpenAIBaseURL:             "https://api.openai.com/v1",
		Model:                     "",
		UpstreamConnectTimeout:    5 * time.Second,
		UpstreamFirstTokenTimeout: 5 * time.Minute,
		UpstreamIdleTimeout:       2 * time.Minute,
		UpstreamTotalTimeout:      100 * time.Minute,
		UpstreamRetries:           3,
		MaxReplyBytes:             1 << 20,
		Titles:                    true,
		SimTTFT:                   200 * time.Millisecond,
		SimTokensPerSecond:        50,
		SimReplyTokens:            120,
		Auth:                      AuthNone,
		MaxFrameBytes:             64 << 10,
		WSPingInterval:            25 * time.Second,
		WSIdleTimeout:             75 * time.Second,
		WSCommandRate:             20,
		WSCommandBurst:            60,
		ChunkInterval:             250 * time.Millisecond,
		ChunkBytes:                4096,
		SessionIdleTimeout:        5 * time.Minute,
		ShutdownTimeout:           25 * time.Second,
		LogLevel:                  slog.LevelInfo,
		LogFormat:                 LogFormatText,
	}
}

// FromEnv returns Default with every variable that getenv reports applied.
// A variable with a fallback (PARLEY_OPENAI_API_KEY falls back to
// OPENAI_API_KEY) reads the fallback only when it is itself unset.
// It is the only place the program reads its environment; pass os.Getenv
// (nil means os.Getenv) or, in tests, a map lookup. A variable that is empty
// or only spaces counts as unset; surrounding spaces are ignored.
//
// FromEnv checks only that each value parses; range and cross-field checks
// are Validate's, because flags may still change fields. On error it
// returns the config with every value that did parse applied, and an error
// that is a *ValidationError or an errors.Join of them, one per bad
// variable.
func FromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Default()
	var errs []error
	listenSet := false
	for i := range vars {
		v := &vars[i]
		name := v.env
		s := strings.TrimSpace(getenv(v.env))
		if s == "" && v.fallback != "" {
			name, s = v.fallback, strings.TrimSpace(getenv(v.fallback))
		}
		if s == "" {
			continue
		}
		if v.env == envListen {
			listenSet = true
		}
		if err := v.set(&c, s); err != nil {
			ve := v.invalid(s, err.Error())
			ve.Var = name
			errs = append(errs, ve)
		}
	}
	if port := strings.TrimSpace(getenv(envPort)); port != "" && !listenSet {
		if err := checkPort(port, false); err != nil {
			errs = append(errs, &ValidationError{
				Var:   envPort,
				Value: port,
				Msg:   "want a TCP port from 1 to 65535; Parley then listens on 0.0.0.0:$PORT (PARLEY_LISTEN, when set, wins)",
			})
		} else {
			c.Listen = net.JoinHostPort("0.0.0.0", port)
		}
	}
	return c, joinErrors(errs)
}

// Validate checks every field and the rules between them. It returns nil,
// one *ValidationError, or an errors.Join of several, in the order of the
// variables in the package documentation. Each names the environment
// variable to change and what it accepts; secrets are never echoed.
func (c Config) Validate() error {
	var errs []error
	for i := range vars {
		v := &vars[i]
		if v.check == nil {
			continue
		}
		if msg := v.check(&c); msg != "" {
			errs = append(errs, v.invalid(v.get(&c), msg))
		}
	}
	return joinErrors(errs)
}

// RegisterFlags defines one flag per non-secret variable on fs, named after
// it (PARLEY_SYNC_INTERVAL is -sync-interval, OLLAMA_HOST -ollama-host) and
// bound to c, with c's current values as defaults. Call it after FromEnv and
// before fs.Parse, so a flag wins over the environment; then call Validate.
// Flags parse exactly as the variables do. The secrets (PARLEY_API_KEYS,
// PARLEY_JWT_SECRET) have no flags: command lines show up in ps and shell
// history.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for i := range vars {
		v := &vars[i]
		if v.flag == "" {
			continue
		}
		fs.Var(&flagValue{c: c, v: v}, v.flag, v.usage+" (env "+v.env+")")
	}
}

// EnvVars returns the names of every environment variable FromEnv reads, in
// documentation order.
func EnvVars() []string {
	names := make([]string, 0, len(vars)+2)
	for i := range vars {
		names = append(names, vars[i].env)
		if vars[i].fallback != "" {
			names = append(names, vars[i].fallback)
		}
		if vars[i].env == envListen {
			names = append(names, envPort)
		}
	}
	return names
}

// LocalBaseURL is the http:// URL at which this process's own HTTP listener
// answers on this machine, for `parley healthcheck`: Listen with an
// unspecified host ("", 0.0.0.0, ::) replaced by loopback. It returns "" if
// Listen is not host:port.
func (c Config) LocalBaseURL() string {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return ""
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// LogValue implements slog.LogValuer: every setting under its environment
// variable's name, with secrets and URL credentials redacted, so the
// effective config can be logged at startup.
func (c Config) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(vars))
	for i := range vars {
		v := &vars[i]
		attrs = append(attrs, slog.String(v.env, v.display(v.get(&c))))
	}
	return slog.GroupValue(attrs...)
}

// flagValue adapts one variable of a Config to flag.Value.
type flagValue struct {
	c *Config
	v *variable
}

func (f *flagValue) String() string {
	if f.c == nil || f.v == nil { // flag.PrintDefaults probes a zero value
		return ""
	}
	return f.v.get(f.c)
}

func (f *flagValue) Set(s string) error {
	if err := f.v.set(f.c, strings.TrimSpace(s)); err != nil {
		return errors.New(err.Error() + f.v.defaultHint())
	}
	return nil
}

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	default:
		return errors.Join(errs...)
	}
}

// String renders the config for humans, redacted as in LogValue.
func (c Config) String() string {
	var b strings.Builder
	for i := range vars {
		v := &vars[i]
		fmt.Fprintf(&b, "%s=%s\n", v.env, v.display(v.get(&c)))
	}
	return b.String()
}

package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/parleyhq/parley/llm/sim"
)

// Environment variable names that code refers to by name.
const (
	envListen     = "PARLEY_LISTEN"
	envPort       = "PORT"
	envNATSURL    = "PARLEY_NATS_URL"
	envAuth       = "PARLEY_AUTH"
	envAPIKeys    = "PARLEY_API_KEYS"
	envJWTSecret  = "PARLEY_JWT_SECRET"
	envPingIntvl  = "PARLEY_WS_PING_INTERVAL"
	envProvider   = "PARLEY_PROVIDER"
	envOpenAIURL  = "PARLEY_OPENAI_BASE_URL"
	envOpenAIKey  = "PARLEY_OPENAI_API_KEY"
	envOpenAIStd  = "OPENAI_API_KEY" // the OpenAI SDKs' variable, read when envOpenAIKey is unset
	natsListenOff = "off"
)

// openAIHost is the host whose API refuses requests without a key.
const openAIHost = "api.openai.com"

// Limits enforced by Validate.
const (
	minMaxFrameBytes = 1024
	minAPIKeyLen     = 16
	minJWTSecretLen  = 32
	maxSimRate       = 1e6 // tokens per second
)

// variable is one setting: its environment variable, its flag, and how to
// parse, print and check it. The vars table drives FromEnv, RegisterFlags,
// Validate, EnvVars and LogValue alike, so they cannot drift apart.
type variable struct {
	env string // environment variable
	// fallback is a second variable FromEnv reads when env is unset
	// (OPENAI_API_KEY for PARLEY_OPENAI_API_KEY); "" for none.
	fallback string
	flag     string // flag name; "" for none (secrets, PORT)
	usage    string // flag usage, one line

	// set parses a non-empty, trimmed value into c. Its error says what is
	// accepted, without naming the variable.
	set func(c *Config, s string) error
	// get formats the field as set would accept it.
	get func(c *Config) string
	// check returns "" when the field is valid, else what is wrong and how
	// to fix it. It runs in Validate.
	check func(c *Config) string

	secret bool                // never echo the value
	redact func(string) string // display form for logs; nil: as is
	noHint bool                // do not append "; default is …" to errors
}

// invalid builds the error for value s.
func (v *variable) invalid(s, msg string) *ValidationError {
	if v.secret {
		s = ""
	} else if v.redact != nil {
		s = v.redact(s)
	}
	return &ValidationError{Var: v.env, Value: s, Msg: msg + v.defaultHint()}
}

func (v *variable) defaultHint() string {
	if v.noHint || v.secret {
		return ""
	}
	d := Default()
	if def := v.get(&d); def != "" {
		return "; default " + def
	}
	return ""
}

// display is the value as logs show it.
func (v *variable) display(s string) string {
	switch {
	case v.secret && s != "":
		return "[redacted]"
	case v.redact != nil:
		return v.redact(s)
	}
	return s
}

// vars lists every setting in documentation order.
var vars = []variable{
	{
		env: envListen, flag: "listen",
		usage: "HTTP listen address, host:port",
		set:   func(c *Config, s string) error { c.Listen = s; return nil },
		get:   func(c *Config) string { return c.Listen },
		check: func(c *Config) string {
			if err := checkHostPort(c.Listen, true); err != nil {
				return err.Error()
			}
			return ""
		},
	},
	{
		env: "PARLEY_DATA_DIR", flag: "data-dir",
		usage: "directory for the embedded NATS server's JetStream files",
		set:   func(c *Config, s string) error { c.DataDir = s; return nil },
		get:   func(c *Config) string { return c.DataDir },
		check: func(c *Config) string {
			if c.DataDir == "" {
				return "want a directory path"
			}
			return ""
		},
	},
	{
		env: envNATSURL, flag: "nats-url",
		usage:  "external NATS URL(s), comma-separated; empty runs an embedded server",
		set:    func(c *Config, s string) error { c.NATSURL = s; return checkNATSURLs(s) },
		get:    func(c *Config) string { return c.NATSURL },
		check:  func(c *Config) string { return errString(checkNATSURLs(c.NATSURL)) },
		redact: redactURLs,
		noHint: true,
	},
	{
		env: "PARLEY_NATS_LISTEN", flag: "nats-listen",
		usage: "embedded NATS client listener, host:port, or off",
		set: func(c *Config, s string) error {
			if strings.EqualFold(s, natsListenOff) {
				c.NATSListen = ""
				return nil
			}
			c.NATSListen = s
			return checkHostPort(s, true)
		},
		get: func(c *Config) string {
			if c.NATSListen == "" {
				return natsListenOff
			}
			return c.NATSListen
		},
		check: func(c *Config) string {
			if c.NATSListen == "" {
				return ""
			}
			if err := checkHostPort(c.NATSListen, true); err != nil {
				return err.Error() + ", or off"
			}
			host, _, _ := net.SplitHostPort(c.NATSListen)
			if c.NATSURL == "" && !isLoopbackHost(host) {
				return "the embedded NATS server has no auth, so its client listener must be on loopback (127.0.0.1, ::1 or localhost); " +
					"use off, a loopback address, or an external NATS cluster with auth (PARLEY_NATS_URL)"
			}
			return ""
		},
	},
	durationVar("PARLEY_SYNC_INTERVAL", "sync-interval",
		"how often JetStream fsyncs; a machine crash can lose this much",
		func(c *Config) *time.Duration { return &c.SyncInterval }),
	{
		env: envProvider, flag: "provider",
		usage: "model provider: " + strings.Join(providers, ", "),
		set:   func(c *Config, s string) error { c.Provider = strings.ToLower(s); return nil },
		get:   func(c *Config) string { return c.Provider },
		check: func(c *Config) string {
			if !slices.Contains(providers, c.Provider) {
				return "want one of: " + strings.Join(providers, ", ")
			}
			return ""
		},
	},
	{
		env: "OLLAMA_HOST", flag: "ollama-host",
		usage: "Ollama server, e.g. http://127.0.0.1:11434 or 127.0.0.1:11434",
		set: func(c *Config, s string) error {
			u, err := normalizeOllamaHost(s)
			if err != nil {
				return err
			}
			c.OllamaHost = u
			return nil
		},
		get: func(c *Config) string { return c.OllamaHost },
		check: func(c *Config) string {
			u, err := normalizeOllamaHost(c.OllamaHost)
			if err != nil {
				return err.Error()
			}
			if u != c.OllamaHost {
				return fmt.Sprintf("not in normal form: write %s (FromEnv and -ollama-host normalize for you)", u)
			}
			return ""
		},
	},
	{
		env: envOpenAIURL, flag: "openai-base-url",
		usage: "OpenAI-compatible API base URL, up to and including /v1",
		set: func(c *Config, s string) error {
			c.OpenAIBaseURL = s
			return checkOpenAIBaseURL(s)
		},
		get:    func(c *Config) string { return c.OpenAIBaseURL },
		check:  func(c *Config) string { return errString(checkOpenAIBaseURL(c.OpenAIBaseURL)) },
		redact: redactURLs,
	},
	{
		env: envOpenAIKey, fallback: envOpenAIStd,
		set: func(c *Config, s string) error { c.OpenAIAPIKey = s; return checkOpenAIKey(s) },
		get: func(c *Config) string { return c.OpenAIAPIKey },
		check: func(c *Config) string {
			if err := checkOpenAIKey(c.OpenAIAPIKey); err != nil {
				return err.Error()
			}
			if c.Provider == ProviderOpenAI && c.OpenAIAPIKey == "" {
				if u, err := url.Parse(c.OpenAIBaseURL); err == nil && strings.EqualFold(u.Hostname(), openAIHost) {
					return fmt.Sprintf("%s=%s with %s=%s needs an API key: set %s or %s, or point %s at a server that needs none (e.g. Ollama's http://127.0.0.1:11434/v1)",
						envProvider, ProviderOpenAI, envOpenAIURL, c.OpenAIBaseURL, envOpenAIKey, envOpenAIStd, envOpenAIURL)
				}
			}
			return ""
		},
		secret: true,
	},
	{
		env: "PARLEY_MODEL", flag: "model",
		usage: "model for new sessions that do not name one",
		set:   func(c *Config, s string) error { c.Model = s; return nil },
		get:   func(c *Config) string { return c.Model },
		check: func(c *Config) string {
			if strings.IndexFunc(c.Model, notPrintableOrSpace) >= 0 {
				return "want a model name without spaces, e.g. llama3.2 or qwen2.5:0.5b"
			}
			return ""
		},
	},
	durationVar("PARLEY_UPSTREAM_CONNECT_TIMEOUT", "upstream-connect-timeout",
		"bound on dialling the model server",
		func(c *Config) *time.Duration { return &c.UpstreamConnectTimeout }),
	durationVar("PARLEY_UPSTREAM_FIRST_TOKEN_TIMEOUT", "upstream-first-token-timeout",
		"bound on the wait for the first token (model load and prompt)",
		func(c *Config) *time.Duration { return &c.UpstreamFirstTokenTimeout }),
	durationVar("PARLEY_UPSTREAM_IDLE_TIMEOUT", "upstream-idle-timeout",
		"bound on the gap between two tokens",
		func(c *Config) *time.Duration { return &c.UpstreamIdleTimeout }),
	durationVar("PARLEY_UPSTREAM_TOTAL_TIMEOUT", "upstream-total-timeout",
		"bound on one whole generation",
		func(c *Config) *time.Duration { return &c.UpstreamTotalTimeout }),
	intVar("PARLEY_UPSTREAM_CONCURRENCY", "upstream-concurrency",
		"generations at once per model, the rest wait in line; 0 means the provider's default (ollama 1, openai 16, sim no limit)",
		func(c *Config) *int { return &c.UpstreamConcurrency }, 0),
	intVar("PARLEY_UPSTREAM_RETRIES", "upstream-retries",
		"retries of a request the model server refused before any output (connection refused, 429, 5xx)",
		func(c *Config) *int { return &c.UpstreamRetries }, 0),
	intVar("PARLEY_CONTEXT_TOKENS", "context-tokens",
		"context window the history is trimmed to, in tokens; 0 means what the model server reports (else 4096)",
		func(c *Config) *int { return &c.ContextTokens }, 0),
	intVar("PARLEY_MAX_REPLY_BYTES", "max-reply-bytes",
		"cap of one reply (text and reasoning); a longer one ends as failed with too_large",
		func(c *Config) *int { return &c.MaxReplyBytes }, 1024),
	boolVar("PARLEY_TITLES", "titles",
		"give each untitled session a title made by the model after its first completed turn",
		func(c *Config) *bool { return &c.Titles }),
	{
		env: "PARLEY_SIM_TTFT", flag: "sim-ttft",
		usage: "simulated model (PARLEY_PROVIDER=sim): time to first token, 0 for none",
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return errors.New(wantSimTTFT)
			}
			c.SimTTFT = d
			return nil
		},
		get: func(c *Config) string { return c.SimTTFT.String() },
		check: func(c *Config) string {
			if c.SimTTFT < 0 {
				return wantSimTTFT
			}
			return ""
		},
	},
	{
		env: "PARLEY_SIM_TOKENS_PER_SECOND", flag: "sim-tokens-per-second",
		usage: "simulated model (PARLEY_PROVIDER=sim): tokens per second after the first",
		set: func(c *Config, s string) error {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return errors.New(wantSimRate)
			}
			c.SimTokensPerSecond = f
			return nil
		},
		get: func(c *Config) string { return strconv.FormatFloat(c.SimTokensPerSecond, 'g', -1, 64) },
		check: func(c *Config) string {
			if r := c.SimTokensPerSecond; !(r > 0 && r <= maxSimRate) { // also refuses NaN
				return wantSimRate
			}
			return ""
		},
	},
	intVar("PARLEY_SIM_REPLY_TOKENS", "sim-reply-tokens",
		"simulated model (PARLEY_PROVIDER=sim): tokens in every reply",
		func(c *Config) *int { return &c.SimReplyTokens }, 1),
	{
		env: "PARLEY_SIM_FAULTS", flag: "sim-faults",
		usage: "simulated model (PARLEY_PROVIDER=sim): injected faults such as unavailable_every=10,cut_after=50, or none",
		set: func(c *Config, s string) error {
			f, err := sim.ParseFaults(s)
			if err != nil {
				var fe *sim.FaultSpecError
				if errors.As(err, &fe) {
					return errors.New(fe.Msg + "; see docs/sim.md")
				}
				return err
			}
			c.SimFaults = f
			return nil
		},
		get: func(c *Config) string { return c.SimFaults.String() },
		check: func(c *Config) string {
			if err := c.SimFaults.Validate(); err != nil {
				return strings.TrimPrefix(err.Error(), "sim: ")
			}
			return ""
		},
	},
	{
		env: envAuth, flag: "auth",
		usage: "client auth: none (loopback only) or token",
		set: func(c *Config, s string) error {
			m := AuthMode(strings.ToLower(s))
			if m != AuthNone && m != AuthToken {
				return errors.New("want none or token")
			}
			c.Auth = m
			return nil
		},
		get:    func(c *Config) string { return string(c.Auth) },
		check:  checkAuth,
		noHint: true,
	},
	{
		env: envAPIKeys,
		set: func(c *Config, s string) error {
			keys, err := parseAPIKeys(s)
			if err != nil {
				return err
			}
			c.APIKeys = keys
			return nil
		},
		get:    func(c *Config) string { return formatAPIKeys(c.APIKeys) },
		check:  func(c *Config) string { return errString(checkAPIKeys(c.APIKeys)) },
		secret: true,
	},
	{
		env:    envJWTSecret,
		set:    func(c *Config, s string) error { c.JWTSecret = s; return nil },
		get:    func(c *Config) string { return c.JWTSecret },
		secret: true,
		check: func(c *Config) string {
			if c.JWTSecret != "" && len(c.JWTSecret) < minJWTSecretLen {
				return fmt.Sprintf("is %d bytes; an HS256 secret needs at least %d (generate one with: openssl rand -base64 32)",
					len(c.JWTSecret), minJWTSecretLen)
			}
			return ""
		},
	},
	intVar("PARLEY_MAX_FRAME_BYTES", "max-frame-bytes",
		"largest WebSocket frame a client may send, in bytes",
		func(c *Config) *int { return &c.MaxFrameBytes }, minMaxFrameBytes),
	durationVar(envPingIntvl, "ws-ping-interval",
		"how often the server pings each WebSocket",
		func(c *Config) *time.Duration { return &c.WSPingInterval }),
	withCheck(durationVar("PARLEY_WS_IDLE_TIMEOUT", "ws-idle-timeout",
		"close a WebSocket silent this long; must exceed the ping interval",
		func(c *Config) *time.Duration { return &c.WSIdleTimeout }),
		func(c *Config) string {
			if c.WSPingInterval > 0 && c.WSIdleTimeout <= c.WSPingInterval {
				return fmt.Sprintf("must exceed %s (%s), or a connection could be closed between two pings; "+
					"about three ping intervals is usual", envPingIntvl, c.WSPingInterval)
			}
			return ""
		}),
	intVar("PARLEY_WS_COMMAND_RATE", "ws-command-rate",
		"frames per second a WebSocket client may send on average; more are dropped with rate_limited",
		func(c *Config) *int { return &c.WSCommandRate }, 1),
	intVar("PARLEY_WS_COMMAND_BURST", "ws-command-burst",
		"frames a WebSocket client may send at once before the rate applies",
		func(c *Config) *int { return &c.WSCommandBurst }, 1),
	durationVar("PARLEY_CHUNK_INTERVAL", "chunk-interval",
		"longest a running reply goes unpersisted",
		func(c *Config) *time.Duration { return &c.ChunkInterval }),
	intVar("PARLEY_CHUNK_BYTES", "chunk-bytes",
		"persist a reply slice once this many bytes are pending",
		func(c *Config) *int { return &c.ChunkBytes }, 1),
	durationVar("PARLEY_SESSION_IDLE_TIMEOUT", "session-idle-timeout",
		"passivate an idle session actor after this long",
		func(c *Config) *time.Duration { return &c.SessionIdleTimeout }),
	durationVar("PARLEY_SHUTDOWN_TIMEOUT", "shutdown-timeout",
		"bound on graceful shutdown after SIGTERM",
		func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
	{
		env: "PARLEY_LOG_LEVEL", flag: "log-level",
		usage: "debug, info, warn or error",
		set: func(c *Config, s string) error {
			l, ok := logLevels[strings.ToLower(s)]
			if !ok {
				return errors.New("want debug, info, warn or error")
			}
			c.LogLevel = l
			return nil
		},
		get: func(c *Config) string {
			for name, l := range logLevels {
				if l == c.LogLevel {
					return name
				}
			}
			return c.LogLevel.String()
		},
		check: func(c *Config) string {
			for _, l := range logLevels {
				if l == c.LogLevel {
					return ""
				}
			}
			return "want debug, info, warn or error"
		},
	},
	{
		env: "PARLEY_LOG_FORMAT", flag: "log-format",
		usage: "text or json",
		set: func(c *Config, s string) error {
			c.LogFormat = LogFormat(strings.ToLower(s))
			if c.LogFormat != LogFormatText && c.LogFormat != LogFormatJSON {
				return errors.New("want text or json")
			}
			return nil
		},
		get: func(c *Config) string { return string(c.LogFormat) },
		check: func(c *Config) string {
			if c.LogFormat != LogFormatText && c.LogFormat != LogFormatJSON {
				return "want text or json"
			}
			return ""
		},
	},
}

const (
	wantSimTTFT = "want a Go duration of 0 or more, such as 0s, 200ms or 2s"
	wantSimRate = "want a number of tokens per second above 0 and at most 1000000, such as 50 or 12.5"
)

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func durationVar(env, flagName, usage string, field func(*Config) *time.Duration) variable {
	const want = "want a positive Go duration such as 250ms, 5s, 2m or 1h30m"
	return variable{
		env: env, flag: flagName, usage: usage,
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return errors.New(want)
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) string { return field(c).String() },
		check: func(c *Config) string {
			if *field(c) <= 0 {
				return want
			}
			return ""
		},
	}
}

func intVar(env, flagName, usage string, field func(*Config) *int, minimum int) variable {
	want := fmt.Sprintf("want a whole number of at least %d", minimum)
	return variable{
		env: env, flag: flagName, usage: usage,
		set: func(c *Config, s string) error {
			n, err := strconv.Atoi(s)
			if err != nil {
				return errors.New(want)
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*field(c)) },
		check: func(c *Config) string {
			if *field(c) < minimum {
				return want
			}
			return ""
		},
	}
}

func boolVar(env, flagName, usage string, field func(*Config) *bool) variable {
	return variable{
		env: env, flag: flagName, usage: usage,
		set: func(c *Config, s string) error {
			switch strings.ToLower(s) {
			case "1", "true", "on", "yes":
				*field(c) = true
			case "0", "false", "off", "no":
				*field(c) = false
			default:
				return errors.New("want on or off (true/false, 1/0, yes/no)")
			}
			return nil
		},
		get:   func(c *Config) string { return strconv.FormatBool(*field(c)) },
		check: func(*Config) string { return "" },
	}
}

// withCheck adds a further check after v's own.
func withCheck(v variable, more func(c *Config) string) variable {
	first := v.check
	v.check = func(c *Config) string {
		if msg := first(c); msg != "" {
			return msg
		}
		return more(c)
	}
	return v
}

func checkAuth(c *Config) string {
	switch c.Auth {
	case AuthNone:
		host, _, err := net.SplitHostPort(c.Listen)
		if err == nil && checkHostPort(c.Listen, true) == nil && !isLoopbackHost(host) {
			return fmt.Sprintf("refusing to serve without auth on %s=%q, which is not a loopback address; "+
				"set %s=token with %s=key:user[,key:user] and/or %s, or listen on 127.0.0.1",
				envListen, c.Listen, envAuth, envAPIKeys, envJWTSecret)
		}
		if len(c.APIKeys) > 0 || c.JWTSecret != "" {
			return fmt.Sprintf("%s or %s is set but auth is none, which ignores them; set %s=token",
				envAPIKeys, envJWTSecret, envAuth)
		}
	case AuthToken:
		if len(c.APIKeys) == 0 && c.JWTSecret == "" {
			return fmt.Sprintf("token auth needs at least one of %s (key:user[,key:user]) or %s",
				envAPIKeys, envJWTSecret)
		}
	default:
		return "want none or token"
	}
	return ""
}

// isLoopbackHost reports whether host (without port) is "localhost" or a
// loopback IP: 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHostPort checks a listen address "host:port", where host may be empty
// (all interfaces), an IP or a host name.
func checkHostPort(s string, allowZero bool) error {
	const want = "want host:port such as 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080"
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New(want)
	}
	if err := checkPort(port, allowZero); err != nil {
		return errors.New(want + "; the port must be a number up to 65535")
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return errors.New(want)
	}
	return nil
}

func checkPort(port string, allowZero bool) error {
	n, err := strconv.Atoi(port)
	if err != nil || n > 65535 || n < 0 || (n == 0 && !allowZero) {
		return errors.New("bad port")
	}
	return nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// normalizeOllamaHost turns an OLLAMA_HOST value into a base URL
// scheme://host:port[/path], reading it as Ollama's own client does
// (envconfig.Host): no scheme means http and port 11434; "http://h" means
// port 80 and "https://h" port 443; a bare "ollama.com" means
// https://ollama.com:443. Unlike Ollama it refuses a bad port instead of
// falling back to the default, and it maps an unspecified address
// (0.0.0.0, ::, or an empty host), which is what servers are told to bind,
// to the loopback address a client can dial.
func normalizeOllamaHost(s string) (string, error) {
	const want = "want an Ollama address such as http://127.0.0.1:11434, 127.0.0.1:11434, localhost or 0.0.0.0"
	s = strings.Trim(strings.TrimSpace(s), `"'`)
	if s == "" {
		return "", errors.New(want)
	}
	defaultPort := "11434"
	scheme, hostport, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		scheme, hostport = "http", s
		if s == "ollama.com" {
			scheme, hostport = "https", "ollama.com:443"
		}
	case strings.EqualFold(scheme, "http"):
		scheme, defaultPort = "http", "80"
	case strings.EqualFold(scheme, "https"):
		scheme, defaultPort = "https", "443"
	default:
		return "", errors.New(want + "; the scheme must be http or https")
	}
	hostport, path, _ := strings.Cut(hostport, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), defaultPort
	}
	if ip := net.ParseIP(host); ip != nil {
		switch {
		case ip.IsUnspecified() && ip.To4() != nil:
			host = "127.0.0.1"
		case ip.IsUnspecified():
			host = "::1"
		default:
			host = ip.String()
		}
	} else if host == "" {
		host = "127.0.0.1"
	} else if !validHostname(host) {
		return "", errors.New(want)
	}
	if checkPort(port, false) != nil {
		return "", errors.New(want + "; the port must be a number from 1 to 65535")
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}
	if path != "" {
		if strings.ContainsAny(path, "?#") {
			return "", errors.New(want + "; a path may follow, but no query or fragment")
		}
		u.Path = "/" + path
	}
	return u.String(), nil
}

// checkOpenAIBaseURL checks an OpenAI-compatible base URL: http or https,
// with a host, no fragment.
func checkOpenAIBaseURL(s string) error {
	const want = "want an http(s) URL up to and including the API version, such as https://api.openai.com/v1, https://openrouter.ai/api/v1 or http://127.0.0.1:11434/v1"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return errors.New(want)
	}
	return nil
}

// checkOpenAIKey checks a bearer token for an OpenAI-compatible API: it
// must fit in one header line. Errors never show the key.
func checkOpenAIKey(k string) error {
	if strings.IndexFunc(k, notPrintableOrSpace) >= 0 {
		return errors.New("the key has spaces or control characters; paste it without quotes or line breaks")
	}
	if strings.IndexFunc(k, func(r rune) bool { return r > '~' }) >= 0 {
		// API keys are ASCII; "…" or curly quotes are a pasted placeholder.
		return errors.New("the key has characters that are not ASCII (a pasted placeholder such as …?); paste the key itself")
	}
	return nil
}

// parseAPIKeys parses PARLEY_API_KEYS: "key:user,key:user". Spaces around
// entries are ignored, and so are empty entries (a trailing comma). The
// key is everything before the first colon. A malformed entry or a repeated
// key is an error that names the entry by position, never by its key.
func parseAPIKeys(s string) (map[string]string, error) {
	keys := make(map[string]string)
	seen := make(map[string]int) // key → 1-based entry number
	for i, entry := range strings.Split(s, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, user, ok := strings.Cut(entry, ":")
		key, user = strings.TrimSpace(key), strings.TrimSpace(user)
		if !ok || key == "" || user == "" {
			return nil, fmt.Errorf("entry %d is not key:user (want key:user[,key:user])", n)
		}
		if len(user) > 128 {
			return nil, fmt.Errorf("entry %d has a user id over 128 bytes", n)
		}
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("entry %d repeats the key of entry %d; each key must map to one user", n, prev)
		}
		seen[key] = n
		keys[key] = user
	}
	if len(keys) == 0 {
		return nil, errors.New("has no entries (want key:user[,key:user])")
	}
	return keys, checkAPIKeys(keys)
}

// formatAPIKeys is the inverse of parseAPIKeys, sorted by user then key.
func formatAPIKeys(keys map[string]string) string {
	entries := make([]string, 0, len(keys))
	for k, u := range keys {
		entries = append(entries, k+":"+u)
	}
	sort.Slice(entries, func(i, j int) bool {
		ki, ui, _ := strings.Cut(entries[i], ":")
		kj, uj, _ := strings.Cut(entries[j], ":")
		if ui != uj {
			return ui < uj
		}
		return ki < kj
	})
	return strings.Join(entries, ",")
}

// checkAPIKeys checks keys already in a map. Errors name users, not keys.
func checkAPIKeys(keys map[string]string) error {
	users := make([]string, 0, len(keys))
	byUser := make(map[string]string, len(keys))
	for k, u := range keys {
		users = append(users, u)
		byUser[u] = k
	}
	sort.Strings(users) // a stable order for error messages
	for _, u := range users {
		k := byUser[u]
		if u == "" || strings.IndexFunc(u, notPrintableOrSpace) >= 0 || strings.ContainsAny(u, ":,") {
			return fmt.Errorf("user id %q must be non-empty, without spaces, colons or commas", u)
		}
		if len(k) < minAPIKeyLen {
			return fmt.Errorf("the key for user %q is shorter than %d characters; generate one with: openssl rand -hex 24", u, minAPIKeyLen)
		}
		if strings.IndexFunc(k, notPrintableOrSpace) >= 0 || strings.ContainsAny(k, ":,") {
			return fmt.Errorf("the key for user %q has spaces, colons or commas", u)
		}
	}
	return nil
}

// checkNATSURLs checks a comma-separated list of NATS server URLs as
// nats.Connect accepts them; "" (embedded) is valid.
func checkNATSURLs(s string) error {
	if s == "" {
		return nil
	}
	const want = "want nats://host:4222 or a comma-separated list (schemes nats, tls, ws, wss); empty runs an embedded server"
	for _, one := range strings.Split(s, ",") {
		one = strings.TrimSpace(one)
		if !strings.Contains(one, "://") {
			one = "nats://" + one
		}
		u, err := url.Parse(one)
		if err != nil || u.Host == "" {
			return errors.New(want)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return errors.New(want)
		}
	}
	return nil
}

// redactURLs hides the credentials in a comma-separated list of URLs.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			parts[i] = u.String()
		} else if err != nil && strings.Contains(p, "@") {
			parts[i] = "[redacted]"
		}
	}
	return strings.Join(parts, ",")
}

func notPrintableOrSpace(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

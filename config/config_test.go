package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/llm/sim"
)

// Two valid secrets for tests; long enough to pass Validate.
const (
	keyA   = "ka-0123456789abcdef"
	keyB   = "kb-0123456789abcdef"
	secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"
	// openaiKey looks like an OpenAI project key.
	openaiKey = "sk-proj-0123456789abcdefXYZ"
)

// env turns pairs of name, value into a getenv function.
func env(kv ...string) func(string) string {
	if len(kv)%2 != 0 {
		panic("env: odd number of arguments")
	}
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// load is FromEnv followed by Validate, as a command does without flags.
func load(getenv func(string) string) (Config, error) {
	c, err := FromEnv(getenv)
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}

// validationErrors unpacks err (one error or a join) into its
// *ValidationErrors, failing the test on anything else.
func validationErrors(t testing.TB, err error) []*ValidationError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	var out []*ValidationError
	for _, e := range errs {
		var ve *ValidationError
		if !errors.As(e, &ve) {
			t.Fatalf("error %q (%T) is not a *ValidationError", e, e)
		}
		if !errors.Is(e, ErrInvalid) {
			t.Errorf("error %q does not wrap ErrInvalid", e)
		}
		out = append(out, ve)
	}
	return out
}

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	c, err := FromEnv(env())
	if err != nil {
		t.Fatalf("FromEnv(empty) = %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("FromEnv(empty) = %+v, want Default()", c)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	d := Default()
	want := map[string]string{
		"PARLEY_LISTEN":                       "127.0.0.1:8080",
		"PARLEY_DATA_DIR":                     "./data",
		"PARLEY_NATS_URL":                     "",
		"PARLEY_NATS_LISTEN":                  "127.0.0.1:4222",
		"PARLEY_SYNC_INTERVAL":                "1s",
		"PARLEY_PROVIDER":                     "ollama",
		"OLLAMA_HOST":                         "http://127.0.0.1:11434",
		"PARLEY_OPENAI_BASE_URL":              "https://api.openai.com/v1",
		"PARLEY_OPENAI_API_KEY":               "",
		"PARLEY_MODEL":                        "",
		"PARLEY_UPSTREAM_CONNECT_TIMEOUT":     "5s",
		"PARLEY_UPSTREAM_FIRST_TOKEN_TIMEOUT": "5m0s",
		"PARLEY_UPSTREAM_IDLE_TIMEOUT":        "2m0s",
		"PARLEY_UPSTREAM_TOTAL_TIMEOUT":       "1h40m0s",
		"PARLEY_UPSTREAM_CONCURRENCY":         "0",
		"PARLEY_UPSTREAM_RETRIES":             "3",
		"PARLEY_CONTEXT_TOKENS":               "0",
		"PARLEY_WS_COMMAND_RATE":              "20",
		"PARLEY_WS_COMMAND_BURST":             "60",
		"PARLEY_MAX_REPLY_BYTES":              "1048576",
		"PARLEY_TITLES":                       "true",
		"PARLEY_SIM_TTFT":                     "200ms",
		"PARLEY_SIM_TOKENS_PER_SECOND":        "50",
		"PARLEY_SIM_REPLY_TOKENS":             "120",
		"PARLEY_SIM_FAULTS":                   "none",
		"PARLEY_AUTH":                         "none",
		"PARLEY_API_KEYS":                     "",
		"PARLEY_JWT_SECRET":                   "",
		"PARLEY_MAX_FRAME_BYTES":              "65536",
		"PARLEY_WS_PING_INTERVAL":             "25s",
		"PARLEY_WS_IDLE_TIMEOUT":              "1m15s",
		"PARLEY_CHUNK_INTERVAL":               "250ms",
		"PARLEY_CHUNK_BYTES":                  "4096",
		"PARLEY_SESSION_IDLE_TIMEOUT":         "5m0s",
		"PARLEY_SHUTDOWN_TIMEOUT":             "25s",
		"PARLEY_LOG_LEVEL":                    "info",
		"PARLEY_LOG_FORMAT":                   "text",
	}
	if len(want) != len(vars) {
		t.Errorf("test covers %d variables, the table has %d", len(want), len(vars))
	}
	for i := range vars {
		v := &vars[i]
		w, ok := want[v.env]
		if !ok {
			t.Errorf("%s: no default in this test", v.env)
			continue
		}
		if got := v.get(&d); got != w {
			t.Errorf("%s default = %q, want %q", v.env, got, w)
		}
	}
	if d.ShutdownTimeout >= 30*time.Second {
		t.Errorf("ShutdownTimeout %v does not fit in Render's 30s grace period", d.ShutdownTimeout)
	}
}

func TestFromEnvGood(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want func(c *Config) // applied to Default()
	}{
		{"listen", []string{"PARLEY_LISTEN", "127.0.0.1:9090"}, func(c *Config) { c.Listen = "127.0.0.1:9090" }},
		{"listen ipv6 loopback", []string{"PARLEY_LISTEN", "[::1]:8080"}, func(c *Config) { c.Listen = "[::1]:8080" }},
		{"listen localhost port 0", []string{"PARLEY_LISTEN", "localhost:0"}, func(c *Config) { c.Listen = "localhost:0" }},
		{"listen 127.0.0.2", []string{"PARLEY_LISTEN", "127.0.0.2:80"}, func(c *Config) { c.Listen = "127.0.0.2:80" }},
		{"listen trimmed", []string{"PARLEY_LISTEN", "  127.0.0.1:1234 \n"}, func(c *Config) { c.Listen = "127.0.0.1:1234" }},
		{"empty counts as unset", []string{"PARLEY_LISTEN", "   "}, func(c *Config) {}},
		{"data dir", []string{"PARLEY_DATA_DIR", "/var/lib/parley"}, func(c *Config) { c.DataDir = "/var/lib/parley" }},
		{"nats url", []string{"PARLEY_NATS_URL", "nats://n1:4222"}, func(c *Config) { c.NATSURL = "nats://n1:4222" }},
		{"nats url list", []string{"PARLEY_NATS_URL", "nats://n1:4222, tls://n2:4222,n3:4222"},
			func(c *Config) { c.NATSURL = "nats://n1:4222, tls://n2:4222,n3:4222" }},
		{"nats listen", []string{"PARLEY_NATS_LISTEN", "127.0.0.1:14222"}, func(c *Config) { c.NATSListen = "127.0.0.1:14222" }},
		{"nats listen off", []string{"PARLEY_NATS_LISTEN", "off"}, func(c *Config) { c.NATSListen = "" }},
		{"nats listen OFF", []string{"PARLEY_NATS_LISTEN", "OFF"}, func(c *Config) { c.NATSListen = "" }},
		{"nats listen public with external cluster", []string{"PARLEY_NATS_URL", "nats://n1:4222", "PARLEY_NATS_LISTEN", "0.0.0.0:4222"},
			func(c *Config) { c.NATSURL = "nats://n1:4222"; c.NATSListen = "0.0.0.0:4222" }},
		{"sync interval", []string{"PARLEY_SYNC_INTERVAL", "100ms"}, func(c *Config) { c.SyncInterval = 100 * time.Millisecond }},
		{"provider", []string{"PARLEY_PROVIDER", "Ollama"}, func(c *Config) { c.Provider = ProviderOllama }},
		{"provider sim", []string{"PARLEY_PROVIDER", "SIM"}, func(c *Config) { c.Provider = ProviderSim }},
		{"sim ttft", []string{"PARLEY_SIM_TTFT", "1.5s"}, func(c *Config) { c.SimTTFT = 1500 * time.Millisecond }},
		{"sim ttft zero", []string{"PARLEY_SIM_TTFT", "0"}, func(c *Config) { c.SimTTFT = 0 }},
		{"sim rate", []string{"PARLEY_SIM_TOKENS_PER_SECOND", "12.5"}, func(c *Config) { c.SimTokensPerSecond = 12.5 }},
		{"sim rate max", []string{"PARLEY_SIM_TOKENS_PER_SECOND", "1e6"}, func(c *Config) { c.SimTokensPerSecond = 1e6 }},
		{"sim reply", []string{"PARLEY_SIM_REPLY_TOKENS", "1"}, func(c *Config) { c.SimReplyTokens = 1 }},
		{"sim faults none", []string{"PARLEY_SIM_FAULTS", "none"}, func(c *Config) {}},
		{"sim faults", []string{"PARLEY_SIM_FAULTS", "unavailable_every=10, cut_after=50,retry_after=1s"}, func(c *Config) {
			c.SimFaults = sim.Faults{Unavailable: sim.Select{Every: 10}, RetryAfter: time.Second, Cut: sim.Select{Every: 1}, CutAfter: 50}
		}},
		{"sim settings with ollama are accepted", []string{"PARLEY_PROVIDER", "ollama", "PARLEY_SIM_REPLY_TOKENS", "5"}, func(c *Config) { c.SimReplyTokens = 5 }},
		{"provider openai with key", []string{"PARLEY_PROVIDER", "OpenAI", "PARLEY_OPENAI_API_KEY", openaiKey},
			func(c *Config) { c.Provider = ProviderOpenAI; c.OpenAIAPIKey = openaiKey }},
		{"provider openai with OPENAI_API_KEY", []string{"PARLEY_PROVIDER", "openai", "OPENAI_API_KEY", openaiKey},
			func(c *Config) { c.Provider = ProviderOpenAI; c.OpenAIAPIKey = openaiKey }},
		{"PARLEY_OPENAI_API_KEY wins over OPENAI_API_KEY", []string{"PARLEY_PROVIDER", "openai", "PARLEY_OPENAI_API_KEY", openaiKey, "OPENAI_API_KEY", "sk-other"},
			func(c *Config) { c.Provider = ProviderOpenAI; c.OpenAIAPIKey = openaiKey }},
		{"blank PARLEY_OPENAI_API_KEY falls back", []string{"PARLEY_PROVIDER", "openai", "PARLEY_OPENAI_API_KEY", "  ", "OPENAI_API_KEY", openaiKey},
			func(c *Config) { c.Provider = ProviderOpenAI; c.OpenAIAPIKey = openaiKey }},
		{"provider openai on ollama's /v1 needs no key", []string{"PARLEY_PROVIDER", "openai", "PARLEY_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"},
			func(c *Config) { c.Provider = ProviderOpenAI; c.OpenAIBaseURL = "http://127.0.0.1:11434/v1" }},
		{"openai base url unused with ollama", []string{"PARLEY_OPENAI_BASE_URL", "https://openrouter.ai/api/v1"},
			func(c *Config) { c.OpenAIBaseURL = "https://openrouter.ai/api/v1" }},
		{"model", []string{"PARLEY_MODEL", "qwen2.5:0.5b"}, func(c *Config) { c.Model = "qwen2.5:0.5b" }},
		{"connect timeout", []string{"PARLEY_UPSTREAM_CONNECT_TIMEOUT", "1500ms"}, func(c *Config) { c.UpstreamConnectTimeout = 1500 * time.Millisecond }},
		{"first token timeout", []string{"PARLEY_UPSTREAM_FIRST_TOKEN_TIMEOUT", "30s"}, func(c *Config) { c.UpstreamFirstTokenTimeout = 30 * time.Second }},
		{"idle timeout", []string{"PARLEY_UPSTREAM_IDLE_TIMEOUT", "10s"}, func(c *Config) { c.UpstreamIdleTimeout = 10 * time.Second }},
		{"total timeout short is fine", []string{"PARLEY_UPSTREAM_TOTAL_TIMEOUT", "1m"}, func(c *Config) { c.UpstreamTotalTimeout = time.Minute }},
		{"total timeout long", []string{"PARLEY_UPSTREAM_TOTAL_TIMEOUT", "3h"}, func(c *Config) { c.UpstreamTotalTimeout = 3 * time.Hour }},
		{"auth none loopback", []string{"PARLEY_AUTH", "none"}, func(c *Config) {}},
		{"auth token with keys", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", keyA + ":alice," + keyB + ":bob"},
			func(c *Config) { c.Auth = AuthToken; c.APIKeys = map[string]string{keyA: "alice", keyB: "bob"} }},
		{"auth token with secret", []string{"PARLEY_AUTH", "TOKEN", "PARLEY_JWT_SECRET", secret},
			func(c *Config) { c.Auth = AuthToken; c.JWTSecret = secret }},
		{"two keys for one user", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", keyA + ":alice, " + keyB + ":alice,"},
			func(c *Config) { c.Auth = AuthToken; c.APIKeys = map[string]string{keyA: "alice", keyB: "alice"} }},
		{"max frame", []string{"PARLEY_MAX_FRAME_BYTES", "1024"}, func(c *Config) { c.MaxFrameBytes = 1024 }},
		{"ping", []string{"PARLEY_WS_PING_INTERVAL", "10s"}, func(c *Config) { c.WSPingInterval = 10 * time.Second }},
		{"ws idle", []string{"PARLEY_WS_IDLE_TIMEOUT", "26s"}, func(c *Config) { c.WSIdleTimeout = 26 * time.Second }},
		{"chunk interval", []string{"PARLEY_CHUNK_INTERVAL", "1s"}, func(c *Config) { c.ChunkInterval = time.Second }},
		{"chunk bytes", []string{"PARLEY_CHUNK_BYTES", "1"}, func(c *Config) { c.ChunkBytes = 1 }},
		{"concurrency", []string{"PARLEY_UPSTREAM_CONCURRENCY", "4"}, func(c *Config) { c.UpstreamConcurrency = 4 }},
		{"no retries", []string{"PARLEY_UPSTREAM_RETRIES", "0"}, func(c *Config) { c.UpstreamRetries = 0 }},
		{"context tokens", []string{"PARLEY_CONTEXT_TOKENS", "8192"}, func(c *Config) { c.ContextTokens = 8192 }},
		{"titles off", []string{"PARLEY_TITLES", "off"}, func(c *Config) { c.Titles = false }},
		{"titles 0", []string{"PARLEY_TITLES", "0"}, func(c *Config) { c.Titles = false }},
		{"titles TRUE", []string{"PARLEY_TITLES", "TRUE"}, func(c *Config) { c.Titles = true }},
		{"session idle", []string{"PARLEY_SESSION_IDLE_TIMEOUT", "30s"}, func(c *Config) { c.SessionIdleTimeout = 30 * time.Second }},
		{"shutdown", []string{"PARLEY_SHUTDOWN_TIMEOUT", "10s"}, func(c *Config) { c.ShutdownTimeout = 10 * time.Second }},
		{"log level debug", []string{"PARLEY_LOG_LEVEL", "debug"}, func(c *Config) { c.LogLevel = slog.LevelDebug }},
		{"log level WARN", []string{"PARLEY_LOG_LEVEL", "WARN"}, func(c *Config) { c.LogLevel = slog.LevelWarn }},
		{"log level error", []string{"PARLEY_LOG_LEVEL", "error"}, func(c *Config) { c.LogLevel = slog.LevelError }},
		{"log format json", []string{"PARLEY_LOG_FORMAT", "json"}, func(c *Config) { c.LogFormat = LogFormatJSON }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := load(env(tt.env...))
			if err != nil {
				t.Fatalf("load(%q) = %v", tt.env, err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("load(%q)\n got %+v\nwant %+v", tt.env, got, want)
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     []string
		wantVar string
		wantMsg string // substring of the error
	}{
		{"listen no port", []string{"PARLEY_LISTEN", "127.0.0.1"}, "PARLEY_LISTEN", "host:port"},
		{"listen bad port", []string{"PARLEY_LISTEN", "127.0.0.1:http"}, "PARLEY_LISTEN", "port must be a number"},
		{"listen port too big", []string{"PARLEY_LISTEN", "127.0.0.1:65536"}, "PARLEY_LISTEN", "65535"},
		{"listen bad host", []string{"PARLEY_LISTEN", "a b:80"}, "PARLEY_LISTEN", "host:port"},
		{"nats url bad scheme", []string{"PARLEY_NATS_URL", "http://n1:4222"}, "PARLEY_NATS_URL", "nats://host:4222"},
		{"nats url empty entry", []string{"PARLEY_NATS_URL", "nats://n1:4222,,"}, "PARLEY_NATS_URL", "comma-separated"},
		{"nats listen bad", []string{"PARLEY_NATS_LISTEN", "4222"}, "PARLEY_NATS_LISTEN", "host:port"},
		{"nats listen public", []string{"PARLEY_NATS_LISTEN", "0.0.0.0:4222"}, "PARLEY_NATS_LISTEN", "must be on loopback"},
		{"nats listen all interfaces", []string{"PARLEY_NATS_LISTEN", ":4222"}, "PARLEY_NATS_LISTEN", "must be on loopback"},
		{"sync interval unitless", []string{"PARLEY_SYNC_INTERVAL", "1"}, "PARLEY_SYNC_INTERVAL", "Go duration"},
		{"sync interval zero", []string{"PARLEY_SYNC_INTERVAL", "0s"}, "PARLEY_SYNC_INTERVAL", "positive"},
		{"provider unknown", []string{"PARLEY_PROVIDER", "anthropic"}, "PARLEY_PROVIDER", "want one of: ollama, openai, sim"},
		{"provider simulated", []string{"PARLEY_PROVIDER", "simulated"}, "PARLEY_PROVIDER", "want one of: ollama, openai, sim"},
		{"openai without a key", []string{"PARLEY_PROVIDER", "openai"}, "PARLEY_OPENAI_API_KEY", "needs an API key: set PARLEY_OPENAI_API_KEY or OPENAI_API_KEY"},
		{"openai base url scheme", []string{"PARLEY_OPENAI_BASE_URL", "127.0.0.1:11434/v1"}, "PARLEY_OPENAI_BASE_URL", "http(s) URL"},
		{"openai base url no host", []string{"PARLEY_OPENAI_BASE_URL", "https:///v1"}, "PARLEY_OPENAI_BASE_URL", "http(s) URL"},
		{"openai key placeholder", []string{"PARLEY_OPENAI_API_KEY", "…"}, "PARLEY_OPENAI_API_KEY", "not ASCII"},
		{"openai key with a line break", []string{"PARLEY_OPENAI_API_KEY", "sk-abc\ndef"}, "PARLEY_OPENAI_API_KEY", "line breaks"},
		{"OPENAI_API_KEY named in its error", []string{"OPENAI_API_KEY", "sk-abc def"}, "OPENAI_API_KEY", "spaces"},
		{"ollama bad scheme", []string{"OLLAMA_HOST", "ftp://box"}, "OLLAMA_HOST", "http or https"},
		{"ollama bad port", []string{"OLLAMA_HOST", "box:99999"}, "OLLAMA_HOST", "port"},
		{"ollama query", []string{"OLLAMA_HOST", "http://box:1/x?y"}, "OLLAMA_HOST", "query"},
		{"ollama spaces", []string{"OLLAMA_HOST", "my box"}, "OLLAMA_HOST", "Ollama address"},
		{"model with space", []string{"PARLEY_MODEL", "llama 3"}, "PARLEY_MODEL", "without spaces"},
		{"connect timeout bad", []string{"PARLEY_UPSTREAM_CONNECT_TIMEOUT", "5 s"}, "PARLEY_UPSTREAM_CONNECT_TIMEOUT", "Go duration"},
		{"connect timeout negative", []string{"PARLEY_UPSTREAM_CONNECT_TIMEOUT", "-5s"}, "PARLEY_UPSTREAM_CONNECT_TIMEOUT", "positive"},
		{"first token timeout zero", []string{"PARLEY_UPSTREAM_FIRST_TOKEN_TIMEOUT", "0"}, "PARLEY_UPSTREAM_FIRST_TOKEN_TIMEOUT", "positive"},
		{"idle timeout bad", []string{"PARLEY_UPSTREAM_IDLE_TIMEOUT", "2 minutes"}, "PARLEY_UPSTREAM_IDLE_TIMEOUT", "Go duration"},
		{"total timeout zero", []string{"PARLEY_UPSTREAM_TOTAL_TIMEOUT", "0s"}, "PARLEY_UPSTREAM_TOTAL_TIMEOUT", "positive"},
		{"sim ttft negative", []string{"PARLEY_SIM_TTFT", "-1s"}, "PARLEY_SIM_TTFT", "0 or more"},
		{"sim ttft unitless", []string{"PARLEY_SIM_TTFT", "200"}, "PARLEY_SIM_TTFT", "Go duration"},
		{"sim rate zero", []string{"PARLEY_SIM_TOKENS_PER_SECOND", "0"}, "PARLEY_SIM_TOKENS_PER_SECOND", "above 0"},
		{"sim rate negative", []string{"PARLEY_SIM_TOKENS_PER_SECOND", "-5"}, "PARLEY_SIM_TOKENS_PER_SECOND", "above 0"},
		{"sim rate NaN", []string{"PARLEY_SIM_TOKENS_PER_SECOND", "NaN"}, "PARLEY_SIM_TOKENS_PER_SECOND", "tokens per second"},
		{"sim rate inf", []string{"PARLEY_SIM_TOKENS_PER_SECOND", "inf"}, "PARLEY_SIM_TOKENS_PER_SECOND", "at most 1000000"},
		{"sim rate words", []string{"PARLEY_SIM_TOKENS_PER_SECOND", "fast"}, "PARLEY_SIM_TOKENS_PER_SECOND", "such as 50"},
		{"sim reply zero", []string{"PARLEY_SIM_REPLY_TOKENS", "0"}, "PARLEY_SIM_REPLY_TOKENS", "at least 1"},
		{"sim faults unknown key", []string{"PARLEY_SIM_FAULTS", "explode=1"}, "PARLEY_SIM_FAULTS", `unknown key "explode"`},
		{"sim faults bad value", []string{"PARLEY_SIM_FAULTS", "cut_after=many"}, "PARLEY_SIM_FAULTS", "cut_after=many: want a whole number of tokens"},
		{"sim faults selector alone", []string{"PARLEY_SIM_FAULTS", "cut_every=3"}, "PARLEY_SIM_FAULTS", "needs cut_after"},
		{"auth unknown", []string{"PARLEY_AUTH", "basic"}, "PARLEY_AUTH", "none or token"},
		{"auth token without keys", []string{"PARLEY_AUTH", "token"}, "PARLEY_AUTH", "PARLEY_API_KEYS"},
		{"auth none with keys", []string{"PARLEY_API_KEYS", keyA + ":alice"}, "PARLEY_AUTH", "set PARLEY_AUTH=token"},
		{"auth none with secret", []string{"PARLEY_JWT_SECRET", secret}, "PARLEY_AUTH", "set PARLEY_AUTH=token"},
		{"keys no colon", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", keyA}, "PARLEY_API_KEYS", "entry 1 is not key:user"},
		{"keys empty user", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", keyA + ":alice," + keyB + ":"}, "PARLEY_API_KEYS", "entry 2 is not key:user"},
		{"keys empty key", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", ":alice"}, "PARLEY_API_KEYS", "entry 1 is not key:user"},
		{"keys duplicate", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", keyA + ":alice," + keyB + ":bob," + keyA + ":carol"},
			"PARLEY_API_KEYS", "entry 3 repeats the key of entry 1"},
		{"keys only commas", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", " , ,"}, "PARLEY_API_KEYS", "no entries"},
		{"keys short", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", "short:alice"}, "PARLEY_API_KEYS", `key for user "alice" is shorter`},
		{"keys user with colon", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", keyA + ":al:ice"}, "PARLEY_API_KEYS", "colons"},
		{"keys user with space", []string{"PARLEY_AUTH", "token", "PARLEY_API_KEYS", keyA + ":al ice"}, "PARLEY_API_KEYS", "without spaces"},
		{"jwt secret short", []string{"PARLEY_AUTH", "token", "PARLEY_JWT_SECRET", "hunter2"}, "PARLEY_JWT_SECRET", "at least 32"},
		{"max frame not a number", []string{"PARLEY_MAX_FRAME_BYTES", "64KiB"}, "PARLEY_MAX_FRAME_BYTES", "whole number"},
		{"max frame too small", []string{"PARLEY_MAX_FRAME_BYTES", "1023"}, "PARLEY_MAX_FRAME_BYTES", "at least 1024"},
		{"ping bad", []string{"PARLEY_WS_PING_INTERVAL", "often"}, "PARLEY_WS_PING_INTERVAL", "Go duration"},
		{"ping zero", []string{"PARLEY_WS_PING_INTERVAL", "0s"}, "PARLEY_WS_PING_INTERVAL", "positive"},
		{"ws idle equal to ping", []string{"PARLEY_WS_IDLE_TIMEOUT", "25s"}, "PARLEY_WS_IDLE_TIMEOUT", "must exceed PARLEY_WS_PING_INTERVAL"},
		{"ws idle below raised ping", []string{"PARLEY_WS_PING_INTERVAL", "80s"}, "PARLEY_WS_IDLE_TIMEOUT", "must exceed"},
		{"ws idle bad", []string{"PARLEY_WS_IDLE_TIMEOUT", "75"}, "PARLEY_WS_IDLE_TIMEOUT", "Go duration"},
		{"chunk interval zero", []string{"PARLEY_CHUNK_INTERVAL", "0ms"}, "PARLEY_CHUNK_INTERVAL", "positive"},
		{"chunk bytes zero", []string{"PARLEY_CHUNK_BYTES", "0"}, "PARLEY_CHUNK_BYTES", "at least 1"},
		{"chunk bytes bad", []string{"PARLEY_CHUNK_BYTES", "4k"}, "PARLEY_CHUNK_BYTES", "whole number"},
		{"concurrency negative", []string{"PARLEY_UPSTREAM_CONCURRENCY", "-1"}, "PARLEY_UPSTREAM_CONCURRENCY", "at least 0"},
		{"retries negative", []string{"PARLEY_UPSTREAM_RETRIES", "-2"}, "PARLEY_UPSTREAM_RETRIES", "at least 0"},
		{"context tokens bad", []string{"PARLEY_CONTEXT_TOKENS", "8k"}, "PARLEY_CONTEXT_TOKENS", "whole number"},
		{"titles bad", []string{"PARLEY_TITLES", "maybe"}, "PARLEY_TITLES", "on or off"},
		{"max reply too small", []string{"PARLEY_MAX_REPLY_BYTES", "10"}, "PARLEY_MAX_REPLY_BYTES", "at least 1024"},
		{"session idle bad", []string{"PARLEY_SESSION_IDLE_TIMEOUT", "5"}, "PARLEY_SESSION_IDLE_TIMEOUT", "Go duration"},
		{"shutdown negative", []string{"PARLEY_SHUTDOWN_TIMEOUT", "-1s"}, "PARLEY_SHUTDOWN_TIMEOUT", "positive"},
		{"log level", []string{"PARLEY_LOG_LEVEL", "trace"}, "PARLEY_LOG_LEVEL", "debug, info, warn or error"},
		{"log level numeric", []string{"PARLEY_LOG_LEVEL", "info+2"}, "PARLEY_LOG_LEVEL", "debug, info, warn or error"},
		{"log format", []string{"PARLEY_LOG_FORMAT", "logfmt"}, "PARLEY_LOG_FORMAT", "text or json"},
		{"port not a number", []string{"PORT", "eighty"}, "PORT", "1 to 65535"},
		{"port zero", []string{"PORT", "0"}, "PORT", "1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(env(tt.env...))
			if err == nil {
				t.Fatalf("load(%q) = nil error, want one naming %s", tt.env, tt.wantVar)
			}
			errs := validationErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("load(%q) gave %d errors, want 1: %v", tt.env, len(errs), err)
			}
			ve := errs[0]
			if ve.Var != tt.wantVar {
				t.Errorf("Var = %q, want %q (error: %v)", ve.Var, tt.wantVar, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.wantVar) {
				t.Errorf("error %q does not start with the variable name %s", msg, tt.wantVar)
			}
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q does not contain %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestErrorsCarryValueAndDefault(t *testing.T) {
	t.Parallel()
	_, err := load(env("PARLEY_SYNC_INTERVAL", "soon"))
	want := `PARLEY_SYNC_INTERVAL="soon": want a positive Go duration such as 250ms, 5s, 2m or 1h30m; default 1s`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestSeveralErrorsAreJoined(t *testing.T) {
	t.Parallel()
	_, err := FromEnv(env(
		"PARLEY_SYNC_INTERVAL", "x",
		"PARLEY_MAX_FRAME_BYTES", "y",
		"PARLEY_LOG_FORMAT", "z",
	))
	errs := validationErrors(t, err)
	var got []string
	for _, e := range errs {
		got = append(got, e.Var)
	}
	want := []string{"PARLEY_SYNC_INTERVAL", "PARLEY_MAX_FRAME_BYTES", "PARLEY_LOG_FORMAT"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("error vars = %q, want %q", got, want)
	}

	c := Default()
	c.ChunkBytes = 0
	c.Model = "two words"
	errs = validationErrors(t, c.Validate())
	if len(errs) != 2 || errs[0].Var != "PARLEY_MODEL" || errs[1].Var != "PARLEY_CHUNK_BYTES" {
		t.Fatalf("Validate errors = %v, want PARLEY_MODEL then PARLEY_CHUNK_BYTES", errs)
	}
}

func TestPortRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		env        []string
		wantListen string
	}{
		{"neither", nil, "127.0.0.1:8080"},
		{"port only", []string{"PORT", "10000"}, "0.0.0.0:10000"},
		{"port with spaces", []string{"PORT", " 10000 "}, "0.0.0.0:10000"},
		{"listen wins", []string{"PORT", "10000", "PARLEY_LISTEN", "127.0.0.1:9000"}, "127.0.0.1:9000"},
		{"bad port ignored when listen set", []string{"PORT", "nope", "PARLEY_LISTEN", "127.0.0.1:9000"}, "127.0.0.1:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := FromEnv(env(tt.env...))
			if err != nil {
				t.Fatalf("FromEnv(%q) = %v", tt.env, err)
			}
			if c.Listen != tt.wantListen {
				t.Errorf("Listen = %q, want %q", c.Listen, tt.wantListen)
			}
		})
	}

	// PORT alone listens publicly, so auth none is refused and token works.
	_, err := load(env("PORT", "10000"))
	errs := validationErrors(t, err)
	if len(errs) != 1 || errs[0].Var != "PARLEY_AUTH" {
		t.Fatalf("PORT with auth none: %v, want a PARLEY_AUTH error", err)
	}
	if _, err := load(env("PORT", "10000", "PARLEY_AUTH", "token", "PARLEY_JWT_SECRET", secret)); err != nil {
		t.Fatalf("PORT with token auth: %v", err)
	}
}

func TestAuthNoneRefusedOffLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		listen   string
		loopback bool
	}{
		{"127.0.0.1:8080", true},
		{"127.1.2.3:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LocalHost:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"[::]:8080", false},
		{"192.168.1.10:8080", false},
		{"10.0.0.1:8080", false},
		{"example.com:8080", false},
		{"localhost.example.com:8080", false},
		{"[::ffff:127.0.0.1]:8080", true}, // an IPv4-mapped loopback address is loopback
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			t.Parallel()
			_, err := load(env("PARLEY_LISTEN", tt.listen, "PARLEY_AUTH", "none"))
			if tt.loopback {
				if err != nil {
					t.Fatalf("auth none on %s: %v", tt.listen, err)
				}
				return
			}
			errs := validationErrors(t, err)
			if len(errs) != 1 || errs[0].Var != "PARLEY_AUTH" {
				t.Fatalf("auth none on %s: %v, want one PARLEY_AUTH error", tt.listen, err)
			}
			for _, s := range []string{"PARLEY_AUTH=token", "PARLEY_API_KEYS", "PARLEY_JWT_SECRET", tt.listen, "loopback"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			// The same address with token auth is fine.
			if _, err := load(env("PARLEY_LISTEN", tt.listen, "PARLEY_AUTH", "token", "PARLEY_API_KEYS", keyA+":alice")); err != nil {
				t.Errorf("token auth on %s: %v", tt.listen, err)
			}
		})
	}
}

func TestAPIKeyParsing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{in: keyA + ":alice", want: map[string]string{keyA: "alice"}},
		{in: " " + keyA + " : alice , " + keyB + ":bob ", want: map[string]string{keyA: "alice", keyB: "bob"}},
		{in: keyA + ":alice,", want: map[string]string{keyA: "alice"}},
		{in: keyA + ":user@example.com", want: map[string]string{keyA: "user@example.com"}},
		{in: "", wantErr: "no entries"},
		{in: keyA, wantErr: "entry 1 is not key:user"},
		{in: keyA + ":alice;" + keyB + ":bob", wantErr: "colons"}, // a semicolon is no separator
		{in: keyA + ":alice," + keyA + ":alice", wantErr: "entry 2 repeats the key of entry 1"},
		{in: "tiny:alice", wantErr: "shorter than 16"},
		{in: "with space key 123456:alice", wantErr: "spaces"},
	}
	for _, tt := range tests {
		got, err := parseAPIKeys(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseAPIKeys(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseAPIKeys(%q) = %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseAPIKeys(%q) = %v, want %v", tt.in, got, tt.want)
		}
		if back, _ := parseAPIKeys(formatAPIKeys(got)); !reflect.DeepEqual(back, got) {
			t.Errorf("formatAPIKeys round trip of %v = %v", got, back)
		}
	}
}

func TestSecretsNeverEchoed(t *testing.T) {
	t.Parallel()
	const shortKey = "tiny-key-9f8e"
	const shortSecret = "hunter2-hunter2"
	_, err := load(env("PARLEY_AUTH", "token",
		"PARLEY_API_KEYS", shortKey+":alice",
		"PARLEY_JWT_SECRET", shortSecret))
	if err == nil {
		t.Fatal("want errors for a short key and a short secret")
	}
	for _, ve := range validationErrors(t, err) {
		if ve.Value != "" {
			t.Errorf("%s error carries Value %q, want none for a secret", ve.Var, ve.Value)
		}
	}
	for _, s := range []string{shortKey, shortSecret} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q echoes the secret %q", err, s)
		}
	}

	// So is an OpenAI key, whichever variable it came from.
	for _, name := range []string{"PARLEY_OPENAI_API_KEY", "OPENAI_API_KEY"} {
		_, err := FromEnv(env(name, "sk-hidden-value 123"))
		errs := validationErrors(t, err)
		if len(errs) != 1 || errs[0].Var != name || errs[0].Value != "" || strings.Contains(err.Error(), "sk-hidden") {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A duplicate key is reported by position only.
	_, err = FromEnv(env("PARLEY_API_KEYS", keyA+":alice,"+keyA+":bob"))
	if err == nil || strings.Contains(err.Error(), keyA) {
		t.Errorf("duplicate key error %v, want one that does not show the key", err)
	}

	// Logs and String redact secrets and URL credentials.
	c := Default()
	c.Auth = AuthToken
	c.APIKeys = map[string]string{keyA: "alice"}
	c.JWTSecret = secret
	c.NATSURL = "nats://parley:pa55word@n1:4222,nats://n2:4222"
	c.OpenAIAPIKey = openaiKey
	c.OpenAIBaseURL = "https://proxy:pr0xypass@llm.example/v1"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	for _, out := range []string{buf.String(), c.String()} {
		for _, s := range []string{keyA, secret, "pa55word", openaiKey, "pr0xypass"} {
			if strings.Contains(out, s) {
				t.Errorf("output shows secret %q:\n%s", s, out)
			}
		}
		for _, s := range []string{"PARLEY_LISTEN", "127.0.0.1:8080", "[redacted]", "n1:4222", "n2:4222", "PARLEY_OPENAI_API_KEY", "llm.example/v1"} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q:\n%s", s, out)
			}
		}
	}
}

func TestOllamaHost(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:11434", "http://127.0.0.1:11434"},
		{"127.0.0.1:11434", "http://127.0.0.1:11434"},
		{"127.0.0.1", "http://127.0.0.1:11434"},
		{"0.0.0.0", "http://127.0.0.1:11434"},
		{"0.0.0.0:11434", "http://127.0.0.1:11434"},
		{":11434", "http://127.0.0.1:11434"},
		{"::", "http://[::1]:11434"},
		{"[::]:11434", "http://[::1]:11434"},
		{"::1", "http://[::1]:11434"},
		{"[::1]", "http://[::1]:11434"},
		{"localhost", "http://localhost:11434"},
		{"gpu-box:8000", "http://gpu-box:8000"},
		{"http://gpu-box", "http://gpu-box:80"},
		{"https://gpu-box", "https://gpu-box:443"},
		{"HTTPS://gpu-box:8443", "https://gpu-box:8443"},
		{"https://proxy.example.com/ollama", "https://proxy.example.com:443/ollama"},
		{"ollama.com", "https://ollama.com:443"},
		{`"127.0.0.1:11434"`, "http://127.0.0.1:11434"}, // quotes, as Ollama strips them
	}
	for _, tt := range tests {
		c, err := load(env("OLLAMA_HOST", tt.in))
		if err != nil {
			t.Errorf("OLLAMA_HOST=%s: %v", tt.in, err)
			continue
		}
		if c.OllamaHost != tt.want {
			t.Errorf("OLLAMA_HOST=%s gave %q, want %q", tt.in, c.OllamaHost, tt.want)
		}
	}

	// A hand-built Config must hold the normal form.
	c := Default()
	c.OllamaHost = "localhost:11434"
	errs := validationErrors(t, c.Validate())
	if len(errs) != 1 || errs[0].Var != "OLLAMA_HOST" || !strings.Contains(errs[0].Msg, "http://localhost:11434") {
		t.Fatalf("Validate with un-normalized OllamaHost = %v", errs)
	}
}

func TestFlagsWinOverEnv(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(
		"PARLEY_LISTEN", "127.0.0.1:9000",
		"PARLEY_MODEL", "from-env",
		"PARLEY_SYNC_INTERVAL", "2s",
		"PARLEY_LOG_LEVEL", "warn",
	))
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)

	// Defaults shown by -help are the values after env.
	if got := fs.Lookup("model").DefValue; got != "from-env" {
		t.Errorf("-model default = %q, want from-env", got)
	}
	if err := fs.Parse([]string{
		"-listen", "127.0.0.1:9001",
		"-model", "from-flag",
		"-nats-listen", "off",
		"-ollama-host", "0.0.0.0",
		"-log-level", "debug",
		"-auth", "token",
		"-ws-idle-timeout", "90s",
	}); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9001" || c.Model != "from-flag" || c.NATSListen != "" ||
		c.OllamaHost != "http://127.0.0.1:11434" || c.LogLevel != slog.LevelDebug ||
		c.Auth != AuthToken || c.WSIdleTimeout != 90*time.Second {
		t.Errorf("flags not applied: %+v", c)
	}
	if c.SyncInterval != 2*time.Second {
		t.Errorf("SyncInterval = %v, want env's 2s kept", c.SyncInterval)
	}
	// Token auth from a flag still needs a key or secret.
	errs := validationErrors(t, c.Validate())
	if len(errs) != 1 || errs[0].Var != "PARLEY_AUTH" {
		t.Errorf("Validate = %v, want a PARLEY_AUTH error", errs)
	}

	// A bad flag value is reported by the flag package, with what is accepted.
	fs2 := flag.NewFlagSet("test", flag.ContinueOnError)
	fs2.SetOutput(io.Discard)
	c2 := Default()
	c2.RegisterFlags(fs2)
	err = fs2.Parse([]string{"-sync-interval", "soon"})
	if err == nil || !strings.Contains(err.Error(), "-sync-interval") || !strings.Contains(err.Error(), "Go duration") {
		t.Errorf("bad flag error = %v", err)
	}
}

func TestFlagsCoverEveryNonSecretVariable(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c := Default()
	c.RegisterFlags(fs)
	for i := range vars {
		v := &vars[i]
		f := fs.Lookup(v.flag)
		switch {
		case v.secret && v.flag != "":
			t.Errorf("%s is secret but has flag -%s", v.env, v.flag)
		case !v.secret && f == nil:
			t.Errorf("%s has no flag", v.env)
		case f != nil && !strings.Contains(f.Usage, v.env):
			t.Errorf("-%s usage %q does not name %s", v.flag, f.Usage, v.env)
		}
		// Every flag's default must parse back to the same value.
		if f != nil {
			c2 := Default()
			if err := v.set(&c2, f.DefValue); err != nil || !reflect.DeepEqual(c2, c) {
				t.Errorf("-%s default %q does not round-trip: %v", v.flag, f.DefValue, err)
			}
		}
	}
	// -help must work (it probes zero flag.Values) and show no secrets.
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.PrintDefaults()
	if !strings.Contains(buf.String(), "-ws-ping-interval") || strings.Contains(buf.String(), "jwt") {
		t.Errorf("PrintDefaults:\n%s", buf.String())
	}
}

func TestEnvVars(t *testing.T) {
	t.Parallel()
	names := EnvVars()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("EnvVars lists %s twice", n)
		}
		seen[n] = true
	}
	for _, n := range []string{"PARLEY_LISTEN", "PORT", "OLLAMA_HOST", "PARLEY_OPENAI_BASE_URL", "PARLEY_OPENAI_API_KEY", "OPENAI_API_KEY", "PARLEY_API_KEYS", "PARLEY_LOG_FORMAT"} {
		if !seen[n] {
			t.Errorf("EnvVars lacks %s", n)
		}
	}
	// FromEnv reads exactly these names.
	read := map[string]bool{}
	if _, err := FromEnv(func(k string) string { read[k] = true; return "" }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(read, seen) {
		t.Errorf("FromEnv read %v, EnvVars says %v", read, seen)
	}
}

func TestLocalBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ listen, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"0.0.0.0:10000", "http://127.0.0.1:10000"},
		{":8080", "http://127.0.0.1:8080"},
		{"[::]:8080", "http://[::1]:8080"},
		{"[::1]:8080", "http://[::1]:8080"},
		{"localhost:8080", "http://localhost:8080"},
		{"192.168.1.5:80", "http://192.168.1.5:80"},
		{"nonsense", ""},
	}
	for _, tt := range tests {
		c := Default()
		c.Listen = tt.listen
		if got := c.LocalBaseURL(); got != tt.want {
			t.Errorf("LocalBaseURL(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
}

func TestZeroConfigIsInvalid(t *testing.T) {
	t.Parallel()
	errs := validationErrors(t, Config{}.Validate())
	if len(errs) < 10 {
		t.Fatalf("Config{}.Validate() gave %d errors, want one per required field: %v", len(errs), errs)
	}
}

func TestSimSettings(t *testing.T) {
	t.Parallel()
	_, err := load(env("PARLEY_SIM_FAULTS", "cut_after=5,explode=1"))
	want := `PARLEY_SIM_FAULTS="cut_after=5,explode=1": unknown key "explode" (keys: unavailable_every, unavailable_rate, retry_after, ` +
		`cut_after, cut_every, cut_rate, error_after, error_every, error_rate, pause_after, pause, pause_every, pause_rate); see docs/sim.md; default none`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}

	// A hand-built Config is checked too.
	c := Default()
	c.Provider = ProviderSim
	c.SimTTFT = -time.Second
	c.SimTokensPerSecond = math.NaN()
	c.SimFaults = sim.Faults{Pause: sim.Select{Every: 1}, PauseAfter: 3} // no length
	var got []string
	for _, ve := range validationErrors(t, c.Validate()) {
		got = append(got, ve.Var)
	}
	if w := []string{"PARLEY_SIM_TTFT", "PARLEY_SIM_TOKENS_PER_SECOND", "PARLEY_SIM_FAULTS"}; !reflect.DeepEqual(got, w) {
		t.Errorf("Validate errors for %v, want %v", got, w)
	}

	// The effective faults are logged in spec form.
	c = Default()
	c.SimFaults, _ = sim.ParseFaults("cut_after=50,unavailable_every=10")
	if s := c.String(); !strings.Contains(s, "PARLEY_SIM_FAULTS=unavailable_every=10,cut_after=50\n") {
		t.Errorf("String() lacks the faults:\n%s", s)
	}
}

func TestProviderConcurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider  string
		set, want int
	}{
		{ProviderOllama, 0, 1},
		{ProviderSim, 0, 0},
		{"openai", 0, 16},
		{ProviderOllama, 3, 3},
		{ProviderSim, 8, 8},
	}
	for _, tt := range tests {
		c := Default()
		c.Provider, c.UpstreamConcurrency = tt.provider, tt.set
		if got := c.ProviderConcurrency(); got != tt.want {
			t.Errorf("%s with %d: %d, want %d", tt.provider, tt.set, got, tt.want)
		}
	}
}

func TestDefaultModel(t *testing.T) {
	t.Parallel()
	tests := []struct{ provider, model, want string }{
		{ProviderOllama, "", "llama3.2"},
		{ProviderOpenAI, "", "gpt-4o-mini"},
		{ProviderSim, "", "sim"},
		{ProviderSim, "tiny", "tiny"},
		{ProviderOllama, "qwen2.5:7b", "qwen2.5:7b"},
	}
	for _, tt := range tests {
		c := Default()
		c.Provider, c.Model = tt.provider, tt.model
		if got := c.DefaultModel(); got != tt.want {
			t.Errorf("%s with %q: %q, want %q", tt.provider, tt.model, got, tt.want)
		}
	}
}

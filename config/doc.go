// Package config is Parley's one typed configuration: defaults that run on a
// laptop, environment variables, flags that mirror them, and validation
// whose errors name the variable to change and what it accepts.
//
// It is the only package that reads the environment. A command does:
//
//	cfg, err := config.FromEnv(os.Getenv) // parse errors only
//	if err != nil { return err }
//	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
//	cfg.RegisterFlags(fs) // flags win over env
//	if err := fs.Parse(args); err != nil { return err }
//	if err := cfg.Validate(); err != nil { return err }
//	logger.Info("config", "config", cfg) // secrets redacted
//
// Errors are *ValidationError values (Var, Value, Msg), joined with
// errors.Join when there are several; all wrap ErrInvalid. Secret values
// (API keys, the OpenAI key, the JWT secret, URL credentials) never
// appear in an error, a log line or -help output, and have no flags.
//
// # Variables
//
// Durations use Go syntax (250ms, 5s, 2m, 1h30m) and must be positive. An
// empty variable counts as unset. Flags are named after the variable:
// PARLEY_WS_PING_INTERVAL is -ws-ping-interval, OLLAMA_HOST -ollama-host.
//
//	variable                             default                  accepts
//	PARLEY_LISTEN                        127.0.0.1:8080           host:port (port 0: any free port)
//	PORT                                 unset                    1-65535; when PARLEY_LISTEN is unset, listen on 0.0.0.0:$PORT
//	PARLEY_DATA_DIR                      ./data                   a directory
//	PARLEY_NATS_URL                      empty (embedded NATS)    nats://host:4222[,nats://…]
//	PARLEY_NATS_LISTEN                   127.0.0.1:4222           loopback host:port, or off
//	PARLEY_SYNC_INTERVAL                 1s                       duration: JetStream fsync interval
//	PARLEY_PROVIDER                      ollama                   ollama, openai, or sim (simulated model: docs/sim.md)
//	OLLAMA_HOST                          http://127.0.0.1:11434   as Ollama reads it: URL, host:port, host, 0.0.0.0
//	PARLEY_OPENAI_BASE_URL               https://api.openai.com/v1  http(s) URL up to and including /v1
//	PARLEY_OPENAI_API_KEY                empty (OPENAI_API_KEY)   bearer token; secret; required for api.openai.com
//	PARLEY_MODEL                         provider's default      a model name; default llama3.2 (ollama), gpt-4o-mini (openai), sim (sim)
//	PARLEY_UPSTREAM_CONNECT_TIMEOUT      5s                       duration
//	PARLEY_UPSTREAM_FIRST_TOKEN_TIMEOUT  5m                       duration
//	PARLEY_UPSTREAM_IDLE_TIMEOUT         2m                       duration
//	PARLEY_UPSTREAM_TOTAL_TIMEOUT        100m                     duration
//	PARLEY_UPSTREAM_CONCURRENCY          0 (provider's default)   generations at once per model, 0 or more
//	PARLEY_UPSTREAM_RETRIES              3                        retries before the first token, 0 or more
//	PARLEY_CONTEXT_TOKENS                0 (ask the server)       tokens the history is trimmed to, 0 or more
//	PARLEY_MAX_REPLY_BYTES               1048576                  bytes of one reply, at least 1024; lowered to fit NATS max_payload
//	PARLEY_TITLES                        on                       on/off: titles made by the model after the first turn
//	PARLEY_SIM_TTFT                      200ms                    duration, 0 or more (sim only, like all PARLEY_SIM_*)
//	PARLEY_SIM_TOKENS_PER_SECOND         50                       number above 0, at most 1000000
//	PARLEY_SIM_REPLY_TOKENS              120                      tokens, at least 1
//	PARLEY_SIM_FAULTS                    none                     fault spec, e.g. unavailable_every=10,cut_after=50
//	PARLEY_AUTH                          none                     none (loopback PARLEY_LISTEN only) or token
//	PARLEY_API_KEYS                      empty                    key:user[,key:user], keys of 16+ characters
//	PARLEY_JWT_SECRET                    empty                    HS256 secret of 32+ bytes
//	PARLEY_MAX_FRAME_BYTES               65536                    bytes, at least 1024
//	PARLEY_WS_PING_INTERVAL              25s                      duration
//	PARLEY_WS_IDLE_TIMEOUT               75s                      duration, more than the ping interval
//	PARLEY_WS_COMMAND_RATE               20                       frames/s a WebSocket client may send on average
//	PARLEY_WS_COMMAND_BURST              60                       frames a client may send at once
//	PARLEY_CHUNK_INTERVAL                250ms                    duration
//	PARLEY_CHUNK_BYTES                   4096                     bytes, at least 1
//	PARLEY_SESSION_IDLE_TIMEOUT          5m                       duration
//	PARLEY_SHUTDOWN_TIMEOUT              25s                      duration (Render's grace period is 30s)
//	PARLEY_LOG_LEVEL                     info                     debug, info, warn, error
//	PARLEY_LOG_FORMAT                    text                     text, json
//
// With PARLEY_AUTH=token at least one of PARLEY_API_KEYS and
// PARLEY_JWT_SECRET is required; with none, setting either is an error
// rather than silently ignored. PARLEY_OPENAI_API_KEY falls back to
// OPENAI_API_KEY (the OpenAI SDKs' variable) when unset; with
// PARLEY_PROVIDER=openai and the default api.openai.com base URL, one of
// them is required.
//
// # Concurrency
//
// A Config is a value with no internal state. FromEnv, Default and Validate
// are safe to call from any goroutine. RegisterFlags binds flags to the
// Config it is called on, which the flag set then writes during Parse; do
// not use that Config concurrently with Parse.
package config

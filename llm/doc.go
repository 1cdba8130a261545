// Package llm defines the model Provider interface that generation actors
// stream replies from, the coded upstream errors (upstream_unavailable,
// upstream_error), and UTF8Carry, which reassembles text an upstream cut
// inside a UTF-8 character. Implementations live in subpackages named for
// what they wrap: llm/ollama (github.com/ollama/ollama/api) and llm/openai
// (any OpenAI-compatible /v1/chat/completions). What they share (the HTTP
// transport, the first-token/idle watchdog, timeout defaults, Retry-After
// parsing) is in llm/internal/upstream.
//
// A Provider knows nothing about sessions. Stream returns nil only when the
// upstream signalled a complete reply; a cut stream is an error.
//
// Concurrency: Providers are safe for concurrent use; Stream calls its
// callback on the calling goroutine, in order.
package llm

// Package llm defines the model Provider interface that generation actors
// stream replies from, the coded upstream errors (upstream_unavailable,
// upstream_error), and UTF8Carry, which reassembles text an upstream cut
// inside a UTF-8 character. Implementations live in subpackages named for
// what they wrap: llm/ollama (github.com/ollama/ollama/api), llm/openai
// (any OpenAI-compatible /v1/chat/completions), and llm/sim, a
// deterministic simulated model for load tests and demos. What the HTTP
// providers share (the transport, the first-token/idle watchdog, timeout
// defaults, Retry-After parsing) is in llm/internal/upstream. Gate is the
// per-model line of generations; EstimateTokens the conservative token
// count used to fit a conversation into a context window.
//
// A Provider knows nothing about sessions. Stream returns nil only when the
// upstream signalled a complete reply; a cut stream is an error.
//
// Concurrency: Providers are safe for concurrent use; Stream calls its
// callback on the calling goroutine, in order.
package llm

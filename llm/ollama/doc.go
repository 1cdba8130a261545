// Package ollama is the llm.Provider for an Ollama server, built on the
// official client package github.com/ollama/ollama/api with its own HTTP
// client and transport.
//
// # Concurrency
//
// A *Provider is safe for concurrent use: each Stream, Check and Models
// call is independent and may run on its own goroutine. Stream calls onDelta
// synchronously on the calling goroutine, in stream order, and never after
// Stream has returned. Close releases idle connections; it is safe to call
// more than once, and the Provider stays usable after it.
//
// # Timeouts
//
// No http.Client.Timeout is used (it would cut long streams). Instead each
// generation has three limits, all measured on whole NDJSON records:
//
//   - FirstTokenTimeout, from the start of the request to the first record
//     (this covers connecting, queueing, a cold model load and prompt
//     processing);
//   - IdleTimeout, the longest gap between two records once the stream has
//     started (time spent inside onDelta does not count);
//   - TotalTimeout, a cap on the whole generation.
//
// When one of them fires, the upstream request is cancelled (so Ollama stops
// generating) and Stream returns an *llm.Error with code upstream_error whose
// cause is ErrFirstTokenTimeout, ErrIdleTimeout or ErrTotalTimeout. That is
// distinct from the caller cancelling ctx, which returns ctx.Err() as is.
//
// # What counts as a completed reply
//
// Only a stream that delivered Ollama's done record. The client package
// returns nil when a stream is cut (it ignores its scanner's error) and when
// the server ends the stream early (Ollama v0.17.4 does that when a model
// repeats one token more than 30 times), so Stream tracks the done record
// itself and reports anything else as upstream_error wrapping
// llm.ErrIncomplete.
//
// # Text
//
// Ollama's /api/chat carries text in JSON strings, so every Delta.Text and
// Delta.Thinking this provider delivers is valid UTF-8 (the server trims
// incomplete sequences before sending; encoding/json would turn any invalid
// byte into U+FFFD). Thinking text is delivered in Delta.Thinking only, never
// mixed into Delta.Text.
package ollama

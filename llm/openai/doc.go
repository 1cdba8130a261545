// Package openai is the llm.Provider for any OpenAI-compatible
// /v1/chat/completions endpoint that streams Server-Sent Events: OpenAI,
// vLLM, llama.cpp's server, OpenRouter, Groq, and Ollama's own /v1. It
// speaks HTTP with the standard library and a small SSE reader of its own
// (see docs/providers.md for why no client library).
//
// Every request sets stream true and stream_options.include_usage, so the
// token counts arrive in a final usage-only chunk (empty choices);
// llm.Request.MaxTokens becomes max_tokens.
//
// # Concurrency
//
// A *Provider is safe for concurrent use: each Stream, Check, Models and
// ContextLength call is independent and may run on its own goroutine.
// Stream calls onDelta synchronously on the calling goroutine, in stream
// order, and never after Stream has returned. Close releases idle
// connections; it is safe to call more than once, and the Provider stays
// usable after it.
//
// # Timeouts
//
// No http.Client.Timeout is used (it would cut long streams). Dialing is
// bounded by ConnectTimeout, and each generation by three limits measured
// on whole SSE events that carry data (comment lines such as OpenRouter's
// ": OPENROUTER PROCESSING" do not count):
//
//   - FirstTokenTimeout, from the start of the request to the first event
//     (this covers connecting, queueing, a cold model load and prompt
//     processing);
//   - IdleTimeout, the longest gap between two events once the stream has
//     started (time spent inside onDelta does not count);
//   - TotalTimeout, a cap on the whole generation.
//
// When one of them fires, the HTTP request is cancelled (so the server
// stops generating) and Stream returns an *llm.Error with code
// upstream_error whose cause is ErrFirstTokenTimeout, ErrIdleTimeout or
// ErrTotalTimeout. That is distinct from the caller cancelling ctx, which
// cancels the request too and returns ctx.Err() as is.
//
// # What counts as a completed reply
//
// A stream that delivered a finish_reason or the `data: [DONE]` event. A
// stream that ends without either (Ollama's /v1 does that when a model
// loops, and when it fails mid-stream it first sends an empty chunk) is an
// upstream_error wrapping llm.ErrIncomplete, and so is one whose
// connection breaks. Once a finish_reason has arrived the reply is
// complete: a break while waiting for the usage chunk or [DONE] only
// loses the token counts. An error object inside the stream
// (`data: {"error":{…}}`, or vLLM's `{"object":"error",…}`), or a
// finish_reason of "error", fails the stream with upstream_error and is
// never retryable.
//
// # Errors before output
//
// HTTP 429 is upstream_unavailable and retryable, with the Retry-After
// (or OpenAI's retry-after-ms) hint in llm.Error.RetryAfter, except
// OpenAI's insufficient_quota, which no retry cures. 408, 502, 503, 504
// and 529 are upstream_unavailable and retryable; other 5xx and 409 are
// upstream_error and retryable; other statuses (400, 401, 403, 404, …)
// are upstream_error and not retryable. An "x-should-retry" header
// overrides the choice, as OpenAI's SDKs let it. The message carries the
// server's own (the "message" of its {"error":{…}} body), and the cause is
// a *StatusError. A server that cannot be reached (refused, DNS, TLS,
// connect timeout) is upstream_unavailable and retryable.
//
// # Text
//
// Delta.Text is the chunk's delta.content; Delta.Thinking is its
// delta.reasoning or delta.reasoning_content (servers differ in the name),
// never mixed into Text. JSON strings are decoded as encoding/json decodes
// them except that bytes which are not valid UTF-8 pass through as they
// are: a server that splits a character across two chunks delivers its
// bytes intact in two deltas, for the caller to join (llm.UTF8Carry). A
// lone UTF-16 surrogate escape decodes to U+FFFD, as in encoding/json.
package openai

// Package sim is a deterministic simulated model: an llm.Provider that
// needs no model server, for load tests and demos. It is chosen only on
// purpose (PARLEY_PROVIDER=sim) and is always labelled: its Name is "sim",
// which every generation.started records, and `parley serve` says so in a
// warning at start and in /readyz ("simulated": true). Parley never falls
// back to it silently.
//
// # Replies
//
// A reply is word-like text (sentences, commas, paragraph breaks) drawn
// from a small vocabulary by a random sequence seeded with a hash of the
// request's model and messages: the same request always gets the same
// bytes, in the same deltas, and a different prompt gets a different
// reply. A shorter reply (MaxTokens, or a fault) is a prefix of the full
// one. Some words carry multi-byte UTF-8 (é, →, 日本語, 🙂), and about
// half of those are split inside a character across two deltas, as real
// upstreams do: callers must reassemble with llm.UTF8Carry. A stream that
// ends by itself (completed, or cut or failed by a fault) never leaves a
// character unfinished; one cancelled through ctx may.
//
// Each reply is Config.ReplyTokens tokens, or the request's MaxTokens when
// that is smaller (done reason "length", else "stop"). Usage counts the
// tokens sent and estimates the prompt at about four characters a token.
//
// # Timing
//
// The first token comes TTFT after the request, the next ones at
// TokensPerSecond, on an absolute schedule: a late wake-up is caught up,
// so the average rate holds, but a stream more than 100 ms behind (its
// consumer blocked) restarts its schedule from now rather than bursting.
//
// # Faults
//
// Config.Faults (or ParseFaults, for PARLEY_SIM_FAULTS) fails chosen
// requests before output, cuts or fails streams after K tokens, or pauses
// them, deterministically by request number. See Faults.
//
// # Concurrency
//
// A *Provider is safe for concurrent use and holds no goroutines: Stream
// runs entirely on the calling goroutine, calls onDelta synchronously and
// in order, never after it returns, and waits on one timer per stream
// (none when TTFT is zero and the rate is unpaced). Cancelling ctx makes
// Stream return ctx.Err() at once, whether it is waiting for a token or
// between two. The only shared state is the request counter, an atomic.
package sim

// Package upstream holds what the llm providers share about talking to a
// model server over HTTP: the transport (no proxy, a connect timeout, no
// overall client timeout), the watchdog that enforces the first-token and
// idle limits on a stream, the defaults and checks of the four timeouts,
// and the parsing of Retry-After hints.
//
// # Concurrency
//
// NewTransport's result is safe for concurrent use, as any
// *http.Transport. A Watchdog belongs to one stream: Enter and Leave are
// called from the goroutine that reads the stream, Stop from that same
// goroutine when the stream ends; its timer callback runs on a goroutine
// of its own and only reads atomics and calls the cancel function.
package upstream

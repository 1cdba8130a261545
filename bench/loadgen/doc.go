// Package loadgen is Parley's load generator, behind `parley loadgen`. It
// opens many WebSocket connections to a Parley (or the baseline server in
// bench/baseline) on loopback, attaches them to sessions, drives chat
// loops, and reports what the clients saw (time to first token and
// inter-token latency from log-linear histograms, tokens per second,
// errors by kind) next to what the server paid (RSS per connection, CPU,
// JetStream writes, read from /proc and, when given, NATS and pprof).
//
// The client side is built not to be the bottleneck: connections are
// dialled by a small pool of goroutines, upgraded with a hand-written
// handshake, and then live on one nbio engine per process with no
// goroutine, timer or buffer of their own (a partial frame is kept only
// while one is split across reads). Frames are parsed without
// allocating. Chat turns start from the event loop that read the last
// turn's terminal event; one ticker goroutine per process handles
// timeouts, retries and think time.
//
// Runs are bounded: Config.Duration caps every run (and MaxDuration caps
// it), and only 127.0.0.0/8 targets and source addresses are accepted.
// Past the per-process file limit, a coordinator re-executes the program
// as worker processes (Config.WorkerCommand, ServeWorker) that each own
// whole sessions, and merges their reports.
//
// Concurrency: Run and RunDirect may be called from any goroutine; every
// goroutine they start has ended when they return. Histogram.Record is
// safe for concurrent use; snapshots and reports are plain values.
package loadgen

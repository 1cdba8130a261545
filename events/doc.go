// Package events owns Parley's durable state: the event types of a session
// log and their JSON codec (PROTOCOL.md section 5), the Store that appends
// and loads those logs, the Index of session summaries, and the embedded
// NATS server that holds them by default.
//
// The JetStream implementation keeps every session in stream
// PARLEY_EVENTS on subject parley.events.<session>; each message is one
// Event as JSON, readable with the nats CLI. Summaries live in the KV
// bucket PARLEY_SESSIONS.
//
// Concurrency: a JetStreamStore is safe for concurrent use by many
// sessions. Each session must have one writer at a time (its session
// actor); Append enforces that optimistically with JetStream's expected
// last subject sequence, so a second writer gets ErrConflict instead of
// forking the log. Event values are immutable once built.
//
// This package knows nothing about sockets, actors or model providers.
package events

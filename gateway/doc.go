// Package gateway is Parley's network front: the nbio engine, the HTTP
// routes of PROTOCOL.md, the WebSocket endpoint, bearer-token auth (API
// keys and HS256 JWTs), the client frame codec and the embedded web page.
// It talks to sessions only through the actors package, never to
// JetStream or a model provider.
//
// # Concurrency contract
//
// nbio's event loops only read and write sockets. WebSocket messages and
// HTTP requests run on nbio's handler pool, one at a time per connection
// and in order. A WebSocket message is decoded (size-limited, strict
// JSON; every string is copied out of nbio's reused buffer) and handed to
// the connection's actor without waiting. Writes to a socket go through
// nbio's non-blocking WriteMessage; a client that lets more than
// MaxWriteBuffer bytes pile up is disconnected and resumes from its
// cursor. There is no goroutine or timer per connection: one goroutine
// pings every open WebSocket each PingInterval, and nbio's read deadline
// (IdleTimeout, renewed by every frame including pongs) closes silent
// ones.
package gateway

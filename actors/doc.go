// Package actors is Parley's actor system (protoactor-go): a connection
// actor per client socket, a session actor per active session, a
// generation actor per running reply, and the registry that finds, spawns
// (rehydrating from the log) and passivates session actors.
//
// # The path of one message
//
// The gateway decodes a frame and Delivers the Command to the socket's
// connection actor, which Requests the registry; the registry forwards the
// message, keeping the sender, to the session actor, which answers the
// connection actor directly. The session actor appends message.user and
// generation.started to the log (events.Store) and acks only after the
// store acknowledged the write; then it spawns a generation actor as its
// child. That actor streams from the llm.Provider on a goroutine it owns
// and sends the session actor whole-UTF-8 text deltas; the session actor
// fans each delta out to every attached connection actor and persists the
// reply in coalesced generation.chunk events (every ChunkInterval or
// ChunkBytes), then one terminal event whose text is the whole reply.
// Stopping the generation actor cancels its context and so the upstream
// HTTP request.
//
// # Concurrency contract
//
// Each actor's state is touched only inside its Receive, one message at a
// time. A session actor is the only writer of its session's log; it writes
// synchronously from Receive (ordering and ack-after-persist come from
// that), which blocks only its own mailbox. Nothing here blocks an nbio
// event loop: System's Connect/Deliver/Closed never wait, while the
// request methods (Create, Send, …) wait for the session actor's answer
// and are for HTTP handlers on nbio's handler pool. Frames are encoded
// once per event or delta and shared read-only by every connection.
//
// Passivation goes through the registry, which counts the messages it
// routed to each session actor: an idle actor asks to stop with the count
// it received, and the registry stops it only if the two match, so no
// command is ever dropped in a stopping mailbox (see DESIGN.md on
// protoactor's traps). Never call Future.Result inside Receive.
//
// Goroutines: the system's idle ticker and one stream goroutine per
// running generation; Shutdown stops both and waits for them.
package actors

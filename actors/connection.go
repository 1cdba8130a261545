package actors

import (
	"github.com/asynkron/protoactor-go/actor"
)

// Sink is the client side of one connection (a WebSocket, an SSE stream)
// as the connection actor sees it. The gateway implements it.
type Sink interface {
	// Write queues f for the client. It must not block: a client too slow
	// to drain its queue is disconnected by the Sink.
	Write(f *Frame)
	// Close closes the connection with a WebSocket status code and reason.
	Close(code int, reason string)
}

// connClosed tells a connection actor that its socket is gone.
type connClosed struct{}

// connInit gives a new connection actor its user and sink. It is the
// first message every connection actor gets (Connect sends it before
// returning), so that all connection actors share one Props: a Props and
// producer closure per connection cost about 280 bytes each.
type connInit struct {
	user string
	sink Sink
}

// connActor is one client connection. It forwards the client's commands
// to sessions (through the registry, so that the session actor answers it
// directly), writes their answers and the frames of the sessions it is
// attached to, and detaches from them all when the socket closes. It keeps
// no goroutine, timer or buffer of its own.
type connActor struct {
	sys  *System
	user string
	sink Sink
	// attached holds the sessions this connection is attached to: almost
	// always one, kept in a string; more go to a map, made on the second.
	attached attachSet
}

// attachSet is a set of session ids that costs nothing for zero sessions
// and one string header for one (a map with one entry costs about 250
// bytes per idle connection).
type attachSet struct {
	one  string              // "" when empty
	more map[string]struct{} // sessions beyond one; nil until needed
}

func (a *attachSet) add(id string) {
	switch {
	case a.one == "" || a.one == id:
		a.one = id
	default:
		if a.more == nil {
			a.more = make(map[string]struct{}, 1)
		}
		a.more[id] = struct{}{}
	}
}

func (a *attachSet) remove(id string) {
	if a.one == id {
		a.one = ""
		for other := range a.more { // promote one, if any
			a.one = other
			delete(a.more, other)
			break
		}
		return
	}
	delete(a.more, id)
}

func (a *attachSet) has(id string) bool {
	if a.one == id {
		return id != ""
	}
	_, ok := a.more[id]
	return ok
}

// each calls f for every session in the set.
func (a *attachSet) each(f func(id string)) {
	if a.one != "" {
		f(a.one)
	}
	for id := range a.more {
		f(id)
	}
}

var _ actor.Actor = (*connActor)(nil)

func (c *connActor) Receive(ctx actor.Context) {
	if c.sink == nil {
		// Not initialized: only a restarted instance (a panic in an
		// earlier message) gets here, and its socket is being closed.
		switch msg := ctx.Message().(type) {
		case connInit:
			c.user, c.sink = msg.user, msg.sink
		case connClosed:
			ctx.Stop(ctx.Self())
		case *actor.Stopped:
			c.sys.connections.Add(-1)
		}
		return
	}
	switch msg := ctx.Message().(type) {
	case *Command:
		c.command(ctx, msg)
	case *Reply:
		if msg.Attached && msg.Err == nil {
			c.attached.add(msg.Session)
		}
		c.sink.Write(ReplyFrame(msg))
	case *Frame:
		if msg.Session == "" || c.attached.has(msg.Session) {
			c.sink.Write(msg)
		}
	case *actor.Stopped:
		c.sys.connections.Add(-1)
	case *actor.Restarting:
		// A panic: this instance's state is lost to the next one. Detach
		// from the sessions and close the socket; the client resumes
		// from its cursor on a new connection.
		c.attached.each(func(id string) {
			ctx.Send(c.sys.registry, &detachSession{session: id, conn: ctx.Self()})
		})
		c.attached = attachSet{}
		c.sink.Close(1011, "internal error")
	case connClosed:
		c.attached.each(func(id string) {
			ctx.Send(c.sys.registry, &detachSession{session: id, conn: ctx.Self()})
		})
		c.attached = attachSet{}
		ctx.Stop(ctx.Self())
	}
}

func (c *connActor) command(ctx actor.Context, cmd *Command) {
	self := ctx.Self()
	switch cmd.Type {
	case CmdPing:
		c.sink.Write(PongFrame)
		if cmd.ID != "" {
			c.sink.Write(ReplyFrame(&Reply{ReqID: cmd.ID}))
		}
	case CmdCreate:
		ctx.Request(c.sys.registry, &createSession{user: c.user, model: cmd.Model, system: cmd.System, title: cmd.Title, conn: self, reqID: cmd.ID})
	case CmdAttach:
		after, err := ParseCursor(cmd.After)
		if err != nil {
			c.sink.Write(ErrorFrame(cmd.ID, cmd.Session, Errorf(CodeBadRequest, "%v", err)))
			return
		}
		ctx.Request(c.sys.registry, &attachSession{session: cmd.Session, user: c.user, conn: self, after: after, reqID: cmd.ID})
	case CmdDetach:
		c.attached.remove(cmd.Session)
		ctx.Send(c.sys.registry, &detachSession{session: cmd.Session, conn: self})
		if cmd.ID != "" {
			c.sink.Write(ReplyFrame(&Reply{ReqID: cmd.ID, Session: cmd.Session}))
		}
	case CmdSend:
		ctx.Request(c.sys.registry, &sendMessage{session: cmd.Session, user: c.user, content: *cmd.Content, clientMsgID: cmd.ClientMsgID, expectSeq: cmd.ExpectSeq, reqID: cmd.ID})
	case CmdStop:
		ctx.Request(c.sys.registry, &stopGeneration{session: cmd.Session, user: c.user, reqID: cmd.ID})
	case CmdRegenerate:
		ctx.Request(c.sys.registry, &regenerate{session: cmd.Session, user: c.user, reqID: cmd.ID})
	default:
		c.sink.Write(ErrorFrame(cmd.ID, cmd.Session, Errorf(CodeBadRequest, "unknown type %q", cmd.Type)))
	}
}

// Conn is a connection's handle on the actor system, held by the gateway.
type Conn struct {
	sys *System
	pid *actor.PID
}

// Connect spawns the connection actor of a new client connection owned by
// user; frames for the client go to sink.
func (s *System) Connect(user string, sink Sink) *Conn {
	s.connections.Add(1)
	pid := s.root.Spawn(s.connProps)
	s.root.Send(pid, connInit{user: user, sink: sink})
	return &Conn{sys: s, pid: pid}
}

// Deliver hands a decoded, validated command to the connection actor. It
// never blocks; cmd must not be modified afterwards.
func (c *Conn) Deliver(cmd *Command) { c.sys.root.Send(c.pid, cmd) }

// Closed tells the connection actor its socket is gone: it detaches from
// every session and stops. Generations keep running.
func (c *Conn) Closed() { c.sys.root.Send(c.pid, connClosed{}) }

package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/llm"
)

// sessionMsg is a message the registry routes to one session's actor.
type sessionMsg interface{ sessionID() string }

// createSession asks the registry for a new session; the new session actor
// answers with a *Reply carrying the session id and, when conn is set,
// attaches that connection.
type createSession struct {
	user   string
	model  string
	system string
	title  string
	conn   *actor.PID // may be nil (HTTP)
	reqID  string
}

// attachSession subscribes conn to the session after sending what the
// cursor lacks.
type attachSession struct {
	session string
	user    string
	conn    *actor.PID
	after   Cursor
	reqID   string
}

// detachSession unsubscribes conn. It is never answered.
type detachSession struct {
	session string
	conn    *actor.PID
}

// sendMessage appends a user message and starts a generation.
type sendMessage struct {
	session     string
	user        string
	content     string
	clientMsgID string
	expectSeq   *uint64
	reqID       string
}

// stopGeneration stops the running generation, if any.
type stopGeneration struct {
	session string
	user    string
	reqID   string
}

// regenerate replaces the last assistant reply with a new generation.
type regenerate struct {
	session string
	user    string
	reqID   string
}

// getDetail asks for the session with its messages.
type getDetail struct {
	session string
	user    string
}

// titleResult is a title made for a session after its first completed
// turn; it is routed like a command so that it reaches the session's
// actor even after passivation.
type titleResult struct {
	session string
	title   string
}

// recoverSession wakes a session's actor so that it rehydrates, which
// records a generation a dead process left open as interrupted. It is
// answered with a *Reply once that is done.
type recoverSession struct{ session string }

func (m *recoverSession) sessionID() string { return m.session }
func (m *titleResult) sessionID() string    { return m.session }
func (m *attachSession) sessionID() string  { return m.session }
func (m *detachSession) sessionID() string  { return m.session }
func (m *sendMessage) sessionID() string    { return m.session }
func (m *stopGeneration) sessionID() string { return m.session }
func (m *regenerate) sessionID() string     { return m.session }
func (m *getDetail) sessionID() string      { return m.session }

// Internal messages of the registry and session actors.
type (
	// idleTick asks every session actor whether it may passivate.
	idleTick struct{}
	// drainAll asks the registry for every live session actor.
	drainAll struct{}
	// drainSession asks a session actor to end its generation, if any,
	// with generation.interrupted (graceful shutdown); it answers
	// drained{}.
	drainSession struct{}
	drained      struct{}
	// countSessions asks the registry how many session actors live.
	countSessions struct{}
	// passivate is a session actor's request to be stopped. received is
	// how many routed messages it has taken; the registry stops it only if
	// that equals how many it routed, so no command is ever lost in a
	// stopping mailbox.
	passivate struct {
		session  string
		received uint64
	}
)

// Messages between a session actor and its generation actor's stream.
type (
	// genDelta is streamed output: reply text and reasoning text, each
	// complete UTF-8, never split.
	genDelta struct {
		gen      uint64
		text     string
		thinking string
	}
	// genQueued is the generation's place in the model's line; 0 means it
	// left the line and the request went upstream.
	genQueued struct {
		gen   uint64
		place int
	}
	// genDone ends a stream: err is nil only when the upstream finished.
	genDone struct {
		gen    uint64
		result llm.Result
		err    error
		ttft   time.Duration // zero if no text arrived
	}
	// flushChunk persists the unpersisted part of the running reply.
	flushChunk struct{ gen uint64 }
)

// Reply answers a command. Err is nil on success.
type Reply struct {
	ReqID   string
	Session string
	// Attached is set when the command attached the connection that sent
	// it (attach, create from a connection).
	Attached bool
	Seq      uint64 // the seq the command made, when it made one
	HasSeq   bool
	Stopped  *bool // stop: whether a generation was running
	Detail   *SessionDetail
	Err      *Error
}

// SessionDetail is a session with its messages (PROTOCOL.md section 1).
type SessionDetail struct {
	events.SessionInfo
	Messages []MessageView `json:"messages"`
}

// MessageView is one user message or generation of a session.
type MessageView struct {
	Seq     uint64 `json:"seq"`
	Role    string `json:"role"`
	Content string `json:"content"`
	State   string `json:"state"`
}

// Generation states of an assistant MessageView.
const (
	StateGenerating  = "generating"
	StateCompleted   = "completed"
	StateStopped     = "stopped"
	StateFailed      = "failed"
	StateInterrupted = "interrupted"
)

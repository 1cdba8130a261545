package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/events"
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

func (m *attachSession) sessionID() string  { return m.session }
func (m *detachSession) sessionID() string  { return m.session }
func (m *sendMessage) sessionID() string    { return m.session }
func (m *stopGeneration) sessionID() string { return m.session }
func (m *regenerate) sessionID() string     { return m.session }
func (m *getDetail) sessionID() string      { return m.session }

// Reply answers a command. Err is nil on success.
type Reply struct {
	ReqID   string
	Session string
	Seq     uint64 // the seq the command made, when it made one
	HasSeq  bool
	Stopped *bool // stop: whether a generation was running
	Detail  *SessionDetail
	Err     *Error
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

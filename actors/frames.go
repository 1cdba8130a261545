package actors

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/events"
)

// Frame types sent to clients (PROTOCOL.md section 3).
const (
	FrameAck       = "ack"
	FrameError     = "error"
	FrameEvent     = "event"
	FrameDelta     = "delta"
	FramePong      = "pong"
	FrameReconnect = "reconnect"
	// FrameQueued tells the clients of a session where its generation
	// stands in the model's line (docs/protocol.md): position 1 is next,
	// 0 means it has left the line and the model is working on it.
	FrameQueued = "queued"
)

// Frame is one server→client frame, encoded once by the session actor and
// shared read-only by every connection it is fanned out to.
type Frame struct {
	Type    string // one of the Frame* constants
	Session string
	// Cursor is the client's cursor after this frame (event and delta
	// frames only). SSE sends it as the message id.
	Cursor string
	// JSON is the encoded frame. It must not be modified.
	JSON []byte
}

type eventWire struct {
	Type    string          `json:"type"`
	Session string          `json:"session"`
	Seq     uint64          `json:"seq"`
	Kind    events.Kind     `json:"kind"`
	At      events.Time     `json:"at"`
	Data    json.RawMessage `json:"data"`
}

// EventFrame encodes a persisted event as an event frame.
func EventFrame(ev events.Event) *Frame {
	b, _ := json.Marshal(eventWire{Type: FrameEvent, Session: ev.Session, Seq: ev.Seq, Kind: ev.Kind, At: ev.At, Data: ev.Data})
	return &Frame{Type: FrameEvent, Session: ev.Session, Cursor: strconv.FormatUint(ev.Seq, 10), JSON: b}
}

// DeltaFrame encodes live text of generation gen starting at byte offset.
// cursorSeq is the seq of the last event the client has been sent.
func DeltaFrame(session string, gen uint64, offset int, text string, cursorSeq uint64) *Frame {
	b := make([]byte, 0, 64+len(session)+len(text))
	b = append(b, `{"type":"delta","session":`...)
	b = appendJSONString(b, session)
	b = append(b, `,"gen":`...)
	b = strconv.AppendUint(b, gen, 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(offset), 10)
	b = append(b, `,"text":`...)
	b = appendJSONString(b, text)
	b = append(b, '}')
	return &Frame{Type: FrameDelta, Session: session, Cursor: Cursor{Seq: cursorSeq, Offset: offset + len(text)}.String(), JSON: b}
}

// QueuedFrame encodes the place of generation gen in the model's line.
// cursorSeq is the seq of the last event the client has been sent.
func QueuedFrame(session string, gen uint64, position int, cursorSeq uint64) *Frame {
	b := make([]byte, 0, 64+len(session))
	b = append(b, `{"type":"queued","session":`...)
	b = appendJSONString(b, session)
	b = append(b, `,"gen":`...)
	b = strconv.AppendUint(b, gen, 10)
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, int64(position), 10)
	b = append(b, '}')
	return &Frame{Type: FrameQueued, Session: session, Cursor: strconv.FormatUint(cursorSeq, 10), JSON: b}
}

type ackWire struct {
	Type    string  `json:"type"`
	ID      string  `json:"id,omitempty"`
	Session string  `json:"session,omitempty"`
	Seq     *uint64 `json:"seq,omitempty"`
	Stopped *bool   `json:"stopped,omitempty"`
}

type errorWire struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Session string `json:"session,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ReplyFrame encodes a command's reply as an ack or error frame.
func ReplyFrame(r *Reply) *Frame {
	if r.Err != nil {
		return ErrorFrame(r.ReqID, r.Session, r.Err)
	}
	w := ackWire{Type: FrameAck, ID: r.ReqID, Session: r.Session}
	if r.HasSeq {
		seq := r.Seq
		w.Seq = &seq
	}
	w.Stopped = r.Stopped
	b, _ := json.Marshal(w)
	return &Frame{Type: FrameAck, Session: r.Session, JSON: b}
}

// ErrorFrame encodes an error frame.
func ErrorFrame(reqID, session string, e *Error) *Frame {
	b, _ := json.Marshal(errorWire{Type: FrameError, ID: reqID, Session: session, Code: e.Code, Message: e.Message})
	return &Frame{Type: FrameError, Session: session, JSON: b}
}

// ReconnectFrame tells a client the server is going away: reconnect
// after the delay (here or elsewhere) and resume from its cursor.
func ReconnectFrame(after time.Duration) *Frame {
	b := append([]byte(`{"type":"reconnect","after_ms":`), strconv.FormatInt(after.Milliseconds(), 10)...)
	return &Frame{Type: FrameReconnect, JSON: append(b, '}')}
}

// PongFrame is the answer to a ping command.
var PongFrame = &Frame{Type: FramePong, JSON: []byte(`{"type":"pong"}`)}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (invalid UTF-8 becomes U+FFFD) but without HTML escaping.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind names a persisted event type (PROTOCOL.md section 5).
type Kind string

// The event kinds of a session log.
const (
	KindSessionCreated        Kind = "session.created"
	KindMessageUser           Kind = "message.user"
	KindGenerationStarted     Kind = "generation.started"
	KindGenerationChunk       Kind = "generation.chunk"
	KindGenerationCompleted   Kind = "generation.completed"
	KindGenerationStopped     Kind = "generation.stopped"
	KindGenerationFailed      Kind = "generation.failed"
	KindGenerationInterrupted Kind = "generation.interrupted"
	KindSessionTitled         Kind = "session.titled"
)

// Terminal reports whether k ends a generation.
func (k Kind) Terminal() bool {
	switch k {
	case KindGenerationCompleted, KindGenerationStopped, KindGenerationFailed, KindGenerationInterrupted:
		return true
	}
	return false
}

// Event is one entry of a session's log. Seq is the session's own 1-based,
// gapless counter; Data is the kind-specific payload as JSON.
type Event struct {
	Session string          `json:"session"`
	Seq     uint64          `json:"seq"`
	Kind    Kind            `json:"kind"`
	At      Time            `json:"at"`
	Data    json.RawMessage `json:"data"`
}

// New builds an event with data marshalled to JSON. It panics only if data
// cannot be marshalled, which for the payload types of this package cannot
// happen.
func New(session string, seq uint64, kind Kind, at time.Time, data any) Event {
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("events: marshal %s: %v", kind, err))
	}
	// The wire keeps milliseconds: so does the event, so that a state
	// folded from live events equals one folded from the log.
	return Event{Session: session, Seq: seq, Kind: kind, At: Time(at.UTC().Truncate(time.Millisecond)), Data: b}
}

// Decode unmarshals the event's data into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("events: decode %s seq %d: %w", e.Kind, e.Seq, err)
	}
	return nil
}

// Time is a timestamp that marshals as RFC 3339 with milliseconds, UTC.
type Time time.Time

// TimeLayout is the wire format of every timestamp.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// Time returns the value as a time.Time.
func (t Time) Time() time.Time { return time.Time(t) }

// SessionCreated is the data of session.created.
type SessionCreated struct {
	Owner  string `json:"owner"`
	Model  string `json:"model"`
	System string `json:"system"`
	Title  string `json:"title"`
}

// MessageUser is the data of message.user.
type MessageUser struct {
	Content     string `json:"content"`
	ClientMsgID string `json:"client_msg_id"`
}

// GenerationStarted is the data of generation.started.
type GenerationStarted struct {
	Model    string `json:"model"`
	Provider string `json:"provider"`
	ReplyTo  uint64 `json:"reply_to"`
	// Context says what of the conversation was sent upstream; nil in
	// logs written before it existed.
	Context *ContextInfo `json:"context,omitempty"`
}

// ContextInfo records how the conversation was fitted into the model's
// context window for one generation.
type ContextInfo struct {
	// Window is the model's context window in tokens.
	Window int `json:"window"`
	// Tokens is the (conservative) estimate of the tokens sent.
	Tokens int `json:"tokens"`
	// Messages is how many messages were sent, system prompt included.
	Messages int `json:"messages"`
	// Omitted is how many older messages were left out to fit.
	Omitted int `json:"omitted,omitempty"`
	// OmittedThrough is the seq of the newest message left out.
	OmittedThrough uint64 `json:"omitted_through,omitempty"`
}

// GenerationChunk is the data of generation.chunk: a persisted slice of a
// running reply, starting at byte Offset of the reply text.
type GenerationChunk struct {
	Gen    uint64 `json:"gen"`
	Offset int    `json:"offset"`
	Text   string `json:"text"`
}

// Usage counts tokens of one generation.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// GenerationCompleted is the data of generation.completed.
type GenerationCompleted struct {
	Gen        uint64 `json:"gen"`
	Text       string `json:"text"`
	DoneReason string `json:"done_reason"`
	Usage      Usage  `json:"usage"`
	TTFTMs     int64  `json:"ttft_ms"`
	DurationMs int64  `json:"duration_ms"`
	// Reasoning is the model's thinking text, kept apart from the reply.
	Reasoning string `json:"reasoning,omitempty"`
}

// GenerationStopped is the data of generation.stopped.
type GenerationStopped struct {
	Gen       uint64 `json:"gen"`
	Text      string `json:"text"`
	Reasoning string `json:"reasoning,omitempty"`
}

// ErrorInfo is a coded error as it is persisted and sent on the wire.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// GenerationFailed is the data of generation.failed.
type GenerationFailed struct {
	Gen       uint64    `json:"gen"`
	Text      string    `json:"text"`
	Error     ErrorInfo `json:"error"`
	Reasoning string    `json:"reasoning,omitempty"`
}

// GenerationInterrupted is the data of generation.interrupted.
type GenerationInterrupted struct {
	Gen  uint64 `json:"gen"`
	Text string `json:"text"`
}

// SessionTitled is the data of session.titled.
type SessionTitled struct {
	Title string `json:"title"`
}

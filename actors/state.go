package actors

import (
	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/llm"
)

// state is a session's state: the fold of its events. apply is
// deterministic and does no I/O, so the same log always yields the same
// state, whether live or rehydrated.
type state struct {
	info    events.SessionInfo
	system  string
	lastSeq uint64
	pos     events.Position

	// visible holds every event clients receive (all but chunks), in order,
	// so attach and detail never read the disk.
	visible []events.Event
	// msgIDs maps client_msg_id to the seq it was appended at.
	msgIDs map[string]uint64
	// turns is the conversation as the model sees it.
	turns []turn
	// open is the generation that has started and not ended, if any.
	open *openGen
}

// turn is one user message or assistant reply of the conversation.
type turn struct {
	seq     uint64 // message.user seq, or gen for a reply
	replyTo uint64 // for a reply: the user message it answers
	role    string
	content string
	state   string
}

// openGen is a generation that has a started event and no terminal one.
type openGen struct {
	gen       uint64
	replyTo   uint64
	text      []byte // text persisted in chunks so far
	lastChunk uint64 // seq of the last chunk event, 0 if none
}

func newState() *state {
	return &state{msgIDs: make(map[string]uint64)}
}

// apply folds one event into the state. Events must come in seq order.
func (s *state) apply(ev events.Event) error {
	s.lastSeq = ev.Seq
	s.info.LastSeq = ev.Seq
	s.info.UpdatedAt = ev.At
	if ev.Kind != events.KindGenerationChunk {
		s.visible = append(s.visible, ev)
	}
	switch ev.Kind {
	case events.KindSessionCreated:
		var d events.SessionCreated
		if err := ev.Decode(&d); err != nil {
			return err
		}
		s.info.ID = ev.Session
		s.info.Owner = d.Owner
		s.info.Model = d.Model
		s.info.Title = d.Title
		s.info.CreatedAt = ev.At
		s.system = d.System
	case events.KindSessionTitled:
		var d events.SessionTitled
		if err := ev.Decode(&d); err != nil {
			return err
		}
		s.info.Title = d.Title
	case events.KindMessageUser:
		var d events.MessageUser
		if err := ev.Decode(&d); err != nil {
			return err
		}
		if d.ClientMsgID != "" {
			s.msgIDs[d.ClientMsgID] = ev.Seq
		}
		s.turns = append(s.turns, turn{seq: ev.Seq, role: "user", content: d.Content, state: StateCompleted})
	case events.KindGenerationStarted:
		var d events.GenerationStarted
		if err := ev.Decode(&d); err != nil {
			return err
		}
		s.open = &openGen{gen: ev.Seq, replyTo: d.ReplyTo}
		s.info.Generating = true
		if n := len(s.turns); n > 0 && s.turns[n-1].role == "assistant" && s.turns[n-1].replyTo == d.ReplyTo {
			s.turns = s.turns[:n-1] // regenerate: the new reply replaces the last one
		}
		s.turns = append(s.turns, turn{seq: ev.Seq, replyTo: d.ReplyTo, role: "assistant", state: StateGenerating})
	case events.KindGenerationChunk:
		var d events.GenerationChunk
		if err := ev.Decode(&d); err != nil {
			return err
		}
		if s.open != nil && s.open.gen == d.Gen && d.Offset == len(s.open.text) {
			s.open.text = append(s.open.text, d.Text...)
			s.open.lastChunk = ev.Seq
		}
	case events.KindGenerationCompleted:
		var d events.GenerationCompleted
		if err := ev.Decode(&d); err != nil {
			return err
		}
		s.end(d.Gen, d.Text, StateCompleted)
	case events.KindGenerationStopped:
		var d events.GenerationStopped
		if err := ev.Decode(&d); err != nil {
			return err
		}
		s.end(d.Gen, d.Text, StateStopped)
	case events.KindGenerationFailed:
		var d events.GenerationFailed
		if err := ev.Decode(&d); err != nil {
			return err
		}
		s.end(d.Gen, d.Text, StateFailed)
	case events.KindGenerationInterrupted:
		var d events.GenerationInterrupted
		if err := ev.Decode(&d); err != nil {
			return err
		}
		s.end(d.Gen, d.Text, StateInterrupted)
	}
	return nil
}

func (s *state) end(gen uint64, text, st string) {
	if s.open != nil && s.open.gen == gen {
		s.open = nil
	}
	s.info.Generating = false
	for i := len(s.turns) - 1; i >= 0; i-- {
		if s.turns[i].seq == gen {
			s.turns[i].content = text
			s.turns[i].state = st
			return
		}
	}
}

// detail renders the session for GET /v1/sessions/{id}. live is the text
// of the running generation so far.
func (s *state) detail(live string) *SessionDetail {
	d := &SessionDetail{SessionInfo: s.info, Messages: make([]MessageView, 0, len(s.turns))}
	for _, t := range s.turns {
		m := MessageView{Seq: t.seq, Role: t.role, Content: t.content, State: t.state}
		if t.state == StateGenerating {
			m.Content = live
		}
		d.Messages = append(d.Messages, m)
	}
	return d
}

// context returns the conversation the model sees for a reply to the user
// message replyTo: the system prompt, then each user message up to replyTo
// with the newest reply to it that has text (a regenerated reply replaces
// the old one).
func (s *state) context(replyTo uint64) []llm.Message {
	msgs := make([]llm.Message, 0, len(s.turns)+1)
	if s.system != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: s.system})
	}
	replies := make(map[uint64]string)
	for _, t := range s.turns {
		if t.role == "assistant" && t.state != StateGenerating && t.content != "" {
			replies[t.replyTo] = t.content
		}
	}
	for _, t := range s.turns {
		if t.role != "user" || t.seq > replyTo {
			continue
		}
		msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: t.content})
		if r, ok := replies[t.seq]; ok && t.seq != replyTo {
			msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Content: r})
		}
	}
	return msgs
}

// lastUserSeq returns the seq of the newest user message, 0 if none.
func (s *state) lastUserSeq() uint64 {
	for i := len(s.turns) - 1; i >= 0; i-- {
		if s.turns[i].role == "user" {
			return s.turns[i].seq
		}
	}
	return 0
}

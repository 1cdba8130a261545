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
// message replyTo, fitted into budget tokens (estimated with
// llm.EstimateMessage): the system prompt, then the user messages up to
// replyTo, each followed by the newest reply to it that has text (a
// regenerated reply replaces the old one). The system prompt and the
// message replied to are always sent; older turns are added newest first
// while they fit, so what is left out is always the oldest part. It
// allocates only for what is sent, however long the session. budget <= 0
// means no limit.
//
// pending, when not nil, is a user message about to be appended: it is
// taken as the newest turn.
func (s *state) context(replyTo uint64, pending *turn, budget int) ([]llm.Message, events.ContextInfo) {
	var info events.ContextInfo
	used := 0
	var sys *llm.Message
	if s.system != "" {
		sys = &llm.Message{Role: llm.RoleSystem, Content: s.system}
		used += llm.EstimateMessage(*sys)
	}
	// Walk back from the newest turn, collecting messages in reverse.
	var rev []llm.Message
	var reply *turn // the newest reply seen to the user message ahead
	full := false
	n := len(s.turns)
	if pending != nil {
		n++
	}
	for i := n - 1; i >= 0; i-- {
		t := pending
		if i < len(s.turns) {
			t = &s.turns[i]
		}
		if t.role == "assistant" {
			if t.state != StateGenerating && t.content != "" && (reply == nil || reply.replyTo != t.replyTo) {
				reply = t
			}
			continue
		}
		if t.seq > replyTo {
			continue
		}
		user := llm.Message{Role: llm.RoleUser, Content: t.content}
		var answer *llm.Message
		if reply != nil && reply.replyTo == t.seq && t.seq != replyTo {
			answer = &llm.Message{Role: llm.RoleAssistant, Content: reply.content}
		}
		reply = nil
		if full {
			info.Omitted += 1 + btoi(answer != nil)
			continue
		}
		cost := llm.EstimateMessage(user)
		if answer != nil {
			cost += llm.EstimateMessage(*answer)
		}
		if t.seq == replyTo || budget <= 0 || used+cost <= budget {
			used += cost
			if answer != nil {
				rev = append(rev, *answer)
			}
			rev = append(rev, user)
			continue
		}
		// The first turn that does not fit ends the context: everything
		// older is left out too, so that no gap opens in the middle.
		full = true
		info.OmittedThrough = t.seq
		info.Omitted += 1 + btoi(answer != nil)
	}
	msgs := make([]llm.Message, 0, len(rev)+1)
	if sys != nil {
		msgs = append(msgs, *sys)
	}
	for i := len(rev) - 1; i >= 0; i-- {
		msgs = append(msgs, rev[i])
	}
	info.Tokens, info.Messages = used, len(msgs)
	return msgs, info
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
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

package actors

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/llm"
)

// logOf builds a session log from (kind, data) pairs with consecutive seqs.
func logOf(pairs ...any) []events.Event {
	var evs []events.Event
	at := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for i := 0; i < len(pairs); i += 2 {
		evs = append(evs, events.New("s", uint64(len(evs)+1), pairs[i].(events.Kind), at.Add(time.Duration(i)*time.Second), pairs[i+1]))
	}
	return evs
}

func fold(t *testing.T, evs []events.Event) *state {
	t.Helper()
	st := newState()
	for _, ev := range evs {
		if err := st.apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestStateFold(t *testing.T) {
	t.Parallel()
	evs := logOf(
		events.KindSessionCreated, events.SessionCreated{Owner: "u", Model: "m", System: "be brief", Title: "t"},
		events.KindMessageUser, events.MessageUser{Content: "q1", ClientMsgID: "c1"},
		events.KindGenerationStarted, events.GenerationStarted{Model: "m", ReplyTo: 2},
		events.KindGenerationChunk, events.GenerationChunk{Gen: 3, Offset: 0, Text: "an"},
		events.KindGenerationCompleted, events.GenerationCompleted{Gen: 3, Text: "answer 1"},
		events.KindMessageUser, events.MessageUser{Content: "q2"},
		events.KindGenerationStarted, events.GenerationStarted{Model: "m", ReplyTo: 6},
		events.KindGenerationChunk, events.GenerationChunk{Gen: 7, Offset: 0, Text: "par"},
		events.KindGenerationChunk, events.GenerationChunk{Gen: 7, Offset: 3, Text: "tial"},
	)
	st := fold(t, evs)
	if st.lastSeq != 9 || st.info.Owner != "u" || st.info.Title != "t" || !st.info.Generating {
		t.Errorf("info %+v lastSeq %d", st.info, st.lastSeq)
	}
	if st.open == nil || st.open.gen != 7 || string(st.open.text) != "partial" {
		t.Fatalf("open generation %+v", st.open)
	}
	if st.msgIDs["c1"] != 2 {
		t.Errorf("msgIDs %v", st.msgIDs)
	}
	if len(st.visible) != 6 { // all but the three chunk events
		var kinds []events.Kind
		for _, ev := range st.visible {
			kinds = append(kinds, ev.Kind)
		}
		t.Errorf("visible %v", kinds)
	}
	want := []llm.Message{
		{Role: llm.RoleSystem, Content: "be brief"},
		{Role: llm.RoleUser, Content: "q1"},
		{Role: llm.RoleAssistant, Content: "answer 1"},
		{Role: llm.RoleUser, Content: "q2"},
	}
	if got, _ := st.context(6, nil, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("context %+v", got)
	}
	// Folding the same log twice gives the same state.
	if again := fold(t, evs); !reflect.DeepEqual(again, st) {
		t.Error("fold is not deterministic")
	}
	// The interrupted generation ends with the persisted text.
	st2 := fold(t, evs)
	ev := events.New("s", 10, events.KindGenerationInterrupted, time.Now(), events.GenerationInterrupted{Gen: 7, Text: "partial"})
	if err := st2.apply(ev); err != nil {
		t.Fatal(err)
	}
	d := st2.detail("")
	if st2.open != nil || st2.info.Generating || d.Messages[3].State != StateInterrupted || d.Messages[3].Content != "partial" {
		t.Errorf("after interrupted: open %v, detail %+v", st2.open, d.Messages)
	}
}

func TestStateRegenerateReplacesReply(t *testing.T) {
	t.Parallel()
	st := fold(t, logOf(
		events.KindSessionCreated, events.SessionCreated{Owner: "u"},
		events.KindMessageUser, events.MessageUser{Content: "q"},
		events.KindGenerationStarted, events.GenerationStarted{ReplyTo: 2},
		events.KindGenerationCompleted, events.GenerationCompleted{Gen: 3, Text: "old"},
		events.KindGenerationStarted, events.GenerationStarted{ReplyTo: 2},
		events.KindGenerationCompleted, events.GenerationCompleted{Gen: 5, Text: "new"},
	))
	d := st.detail("")
	if len(d.Messages) != 2 || d.Messages[1].Seq != 5 || d.Messages[1].Content != "new" {
		t.Errorf("detail %+v", d.Messages)
	}
	if got, _ := st.context(2, nil, 0); len(got) != 1 || got[0].Content != "q" {
		t.Errorf("context for a new reply to q: %+v", got)
	}
}

// turnsLog is a session with a system prompt and n turns whose user
// messages are "q<i>" padded to 30 bytes and replies "a<i>" padded to 60.
func turnsLog(n int) []any {
	log := []any{events.KindSessionCreated, events.SessionCreated{Owner: "u", System: "be brief"}}
	seq := uint64(1)
	for i := 0; i < n; i++ {
		user, gen := seq+1, seq+2
		log = append(log,
			events.KindMessageUser, events.MessageUser{Content: fmt.Sprintf("%-30s", fmt.Sprintf("q%d", i))},
			events.KindGenerationStarted, events.GenerationStarted{ReplyTo: user},
			events.KindGenerationCompleted, events.GenerationCompleted{Gen: gen, Text: fmt.Sprintf("%-60s", fmt.Sprintf("a%d", i))},
		)
		seq = gen + 1
	}
	return log
}

// TestContextTrimmed fits the conversation into a token budget: the
// system prompt and the message replied to always go, then whole turns,
// newest first, and what was left out is counted.
func TestContextTrimmed(t *testing.T) {
	t.Parallel()
	// 5 turns, then a new question (seq 17) being replied to.
	st := fold(t, logOf(append(turnsLog(5), events.KindMessageUser, events.MessageUser{Content: "now"})...))
	const replyTo = 17
	sysCost := llm.EstimateTokens("be brief") + llm.MessageOverheadTokens            // 7
	qCost := llm.EstimateTokens(strings.Repeat("q", 30)) + llm.MessageOverheadTokens // 14
	aCost := llm.EstimateTokens(strings.Repeat("a", 60)) + llm.MessageOverheadTokens // 24
	nowCost := llm.EstimateTokens("now") + llm.MessageOverheadTokens                 // 5
	base := sysCost + nowCost
	tests := []struct {
		name      string
		budget    int
		turns     int // older turns kept
		omitted   int
		omittedTo uint64
	}{
		{"no limit", 0, 5, 0, 0},
		{"room for all", base + 5*(qCost+aCost), 5, 0, 0},
		{"one short of all", base + 5*(qCost+aCost) - 1, 4, 2, 2},
		{"two turns", base + 2*(qCost+aCost) + 3, 2, 6, 8},
		{"only the question", base, 0, 10, 14},
		{"less than the question", 1, 0, 10, 14},
	}
	for _, tt := range tests {
		msgs, info := st.context(replyTo, nil, tt.budget)
		if len(msgs) != 2+2*tt.turns || msgs[0].Content != "be brief" || msgs[len(msgs)-1].Content != "now" {
			t.Errorf("%s: %d messages: %+v", tt.name, len(msgs), msgs)
			continue
		}
		// The kept turns are the newest, in order.
		for i := 0; i < tt.turns; i++ {
			want := fmt.Sprintf("q%d", 5-tt.turns+i)
			if got := strings.TrimSpace(msgs[1+2*i].Content); got != want {
				t.Errorf("%s: message %d is %q, want %q", tt.name, 1+2*i, got, want)
			}
		}
		wantTokens := base + tt.turns*(qCost+aCost)
		if info.Messages != len(msgs) || info.Omitted != tt.omitted || info.OmittedThrough != tt.omittedTo || info.Tokens != wantTokens {
			t.Errorf("%s: info %+v, want %d messages, %d omitted through %d, %d tokens", tt.name, info, len(msgs), tt.omitted, tt.omittedTo, wantTokens)
		}
		if tt.budget >= base && info.Tokens > tt.budget {
			t.Errorf("%s: %d tokens over the budget %d", tt.name, info.Tokens, tt.budget)
		}
	}
}

// TestContextOfLongSession keeps a 10,000-turn session's request inside
// the window, whatever its length.
func TestContextOfLongSession(t *testing.T) {
	t.Parallel()
	st := fold(t, logOf(append(turnsLog(10000), events.KindMessageUser, events.MessageUser{Content: "and now?"})...))
	replyTo := st.lastUserSeq()
	for _, window := range []int{512, 2048, 8192} {
		budget := window - llm.ReplyReserve(window)
		msgs, info := st.context(replyTo, nil, budget)
		est := 0
		for _, m := range msgs {
			est += llm.EstimateMessage(m)
		}
		if est > budget || info.Tokens != est || msgs[len(msgs)-1].Content != "and now?" {
			t.Errorf("window %d: %d messages, %d tokens for a budget of %d (info %+v)", window, len(msgs), est, budget, info)
		}
		if info.Omitted+info.Messages != 1+2*10000+1 {
			t.Errorf("window %d: %d sent + %d omitted, want every message counted", window, info.Messages, info.Omitted)
		}
	}
}

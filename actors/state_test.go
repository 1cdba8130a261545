package actors

import (
	"reflect"
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
	if got := st.context(6); !reflect.DeepEqual(got, want) {
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
	if got := st.context(2); len(got) != 1 || got[0].Content != "q" {
		t.Errorf("context for a new reply to q: %+v", got)
	}
}

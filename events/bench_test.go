package events_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
)

// BenchmarkAppend appends one message.user event to a session's log on a
// real embedded JetStream (file storage, one replica): JSON encoding, the
// expected-last-subject-sequence check and the message id for dedup.
// The baseline publishes the same bytes to the same stream with no
// headers at all, so the ratio is what Parley's append discipline costs
// over a bare JetStream publish in the same run.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	b.Run("parley-append", func(b *testing.B) {
		store := testkit.NewNATS(b, "", "").Store(b)
		at := time.Now()
		pos, err := store.Append(ctx, "bench", 0, events.New("bench", 1, events.KindSessionCreated, at, events.SessionCreated{Owner: "u", Model: "tiny"}))
		if err != nil {
			b.Fatal(err)
		}
		seq := uint64(1)
		b.ReportAllocs()
		for b.Loop() {
			seq++
			ev := events.New("bench", seq, events.KindMessageUser, at, events.MessageUser{Content: "a question of a typical length for a chat", ClientMsgID: "m"})
			if pos, err = store.Append(ctx, "bench", pos, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-bare-publish", func(b *testing.B) {
		n := testkit.NewNATS(b, "", "")
		n.Store(b) // the same stream
		ev := events.New("bench", 2, events.KindMessageUser, time.Now(), events.MessageUser{Content: "a question of a typical length for a chat", ClientMsgID: "m"})
		payload, err := json.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		subj := events.Subject("bench")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := n.JS.Publish(ctx, subj, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

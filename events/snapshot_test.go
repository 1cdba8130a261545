package events_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
)

// randomText does not compress, so big snapshots really take several parts.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)[:n]
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := testkit.NewNATS(t, "", "")
	st := n.Store(t)
	if _, err := st.GetSnapshot(ctx, "s"); !errors.Is(err, events.ErrNotFound) {
		t.Fatalf("no snapshot yet: %v", err)
	}
	tests := []struct {
		name   string
		events int
		size   int
	}{
		{"small", 3, 10},
		{"several parts", 1200, 600}, // ~700 KiB of incompressible text
		{"smaller again", 5, 10},
	}
	for i, tt := range tests {
		var evs []events.Event
		for j := 0; j < tt.events; j++ {
			evs = append(evs, ev("s", uint64(j+1), events.KindMessageUser, events.MessageUser{Content: randomText(tt.size)}))
		}
		snap := events.Snapshot{Session: "s", Pos: events.Position(100 + i), LastSeq: uint64(tt.events), Events: evs}
		if err := st.PutSnapshot(ctx, snap); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := st.GetSnapshot(ctx, "s")
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got.Pos != snap.Pos || got.LastSeq != snap.LastSeq || !reflect.DeepEqual(got.Events, snap.Events) {
			t.Fatalf("%s: round trip differs (pos %d seq %d, %d events)", tt.name, got.Pos, got.LastSeq, len(got.Events))
		}
	}
	// The replaced snapshots' parts are gone: only the manifest and the
	// last snapshot's one part remain.
	kv, err := n.JS.KeyValue(ctx, events.SnapshotBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Errorf("keys left: %v", keys)
	}
	// A damaged part makes the snapshot unusable, not wrong.
	if _, err := kv.Put(ctx, "s.102.0", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetSnapshot(ctx, "s"); !errors.Is(err, events.ErrNotFound) {
		t.Errorf("damaged snapshot: %v", err)
	}
	_ = jetstream.ErrKeyNotFound
}

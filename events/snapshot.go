package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"
)

// SnapshotBucket is the KV bucket of session snapshots.
const SnapshotBucket = "PARLEY_SNAPSHOTS"

// snapshotPartBytes bounds one KV value of a snapshot, well under NATS's
// default 1 MiB max payload.
const snapshotPartBytes = 256 << 10

// Snapshot is a session's state at one position of its log: every event
// clients receive (all but generation.chunk) up to Pos. Taken when no
// generation is open, it is all a session actor needs to rebuild itself;
// the events after Pos (the tail) complete it.
type Snapshot struct {
	Session string
	Pos     Position // stream position of the last event folded in
	LastSeq uint64   // seq of the last event folded in
	Events  []Event
}

// Snapshots stores one snapshot per session.
type Snapshots interface {
	// PutSnapshot replaces the session's snapshot.
	PutSnapshot(ctx context.Context, s Snapshot) error
	// GetSnapshot returns the session's snapshot, or ErrNotFound when
	// there is none (or it is unreadable: the log is the truth).
	GetSnapshot(ctx context.Context, session string) (Snapshot, error)
}

var _ Snapshots = (*JetStreamStore)(nil)

// manifest is the KV value under the session id: it names the parts of
// the snapshot, which are written first, under keys carrying Pos, so a
// crash between parts and manifest leaves the old snapshot intact.
type manifest struct {
	V       int      `json:"v"`
	Pos     Position `json:"pos"`
	LastSeq uint64   `json:"last_seq"`
	Parts   int      `json:"parts"`
	Size    int      `json:"size"` // compressed bytes
	CRC     uint32   `json:"crc"`  // of the compressed bytes
}

func partKey(session string, pos Position, n int) string {
	return session + "." + strconv.FormatUint(uint64(pos), 10) + "." + strconv.Itoa(n)
}

func (s *JetStreamStore) snapshots(ctx context.Context) (jetstream.KeyValue, error) {
	if s.snaps != nil {
		return s.snaps, nil
	}
	kv, err := s.js.KeyValue(ctx, SnapshotBucket)
	if err != nil {
		return nil, fmt.Errorf("events: open bucket %s: %w", SnapshotBucket, err)
	}
	return kv, nil
}

// PutSnapshot writes the snapshot as s2-compressed JSON in parts, then its
// manifest, then deletes the parts of the snapshot it replaced.
func (s *JetStreamStore) PutSnapshot(ctx context.Context, snap Snapshot) error {
	kv, err := s.snapshots(ctx)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(snap.Events)
	if err != nil {
		return fmt.Errorf("events: encode snapshot %s: %w", snap.Session, err)
	}
	comp := s2.Encode(nil, raw)
	m := manifest{V: 1, Pos: snap.Pos, LastSeq: snap.LastSeq, Size: len(comp), CRC: crc32.ChecksumIEEE(comp)}
	for off := 0; off < len(comp) || m.Parts == 0; off += snapshotPartBytes {
		end := min(off+snapshotPartBytes, len(comp))
		if _, err := kv.Put(ctx, partKey(snap.Session, snap.Pos, m.Parts), comp[off:end]); err != nil {
			return fmt.Errorf("events: put snapshot %s part %d: %w", snap.Session, m.Parts, err)
		}
		m.Parts++
	}
	old, _ := s.getManifest(ctx, kv, snap.Session)
	b, _ := json.Marshal(m)
	if _, err := kv.Put(ctx, snap.Session, b); err != nil {
		return fmt.Errorf("events: put snapshot %s: %w", snap.Session, err)
	}
	if old != nil && old.Pos != m.Pos {
		for n := 0; n < old.Parts; n++ {
			_ = kv.Purge(ctx, partKey(snap.Session, old.Pos, n))
		}
	}
	return nil
}

func (s *JetStreamStore) getManifest(ctx context.Context, kv jetstream.KeyValue, session string) (*manifest, error) {
	e, err := kv.Get(ctx, session)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("events: snapshot %s: %w", session, ErrNotFound)
		}
		return nil, fmt.Errorf("events: get snapshot %s: %w", session, err)
	}
	var m manifest
	if err := json.Unmarshal(e.Value(), &m); err != nil || m.V != 1 {
		return nil, fmt.Errorf("events: snapshot %s: unreadable manifest: %w", session, ErrNotFound)
	}
	return &m, nil
}

// GetSnapshot reads and checks the session's snapshot.
func (s *JetStreamStore) GetSnapshot(ctx context.Context, session string) (Snapshot, error) {
	kv, err := s.snapshots(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	m, err := s.getManifest(ctx, kv, session)
	if err != nil {
		return Snapshot{}, err
	}
	var comp bytes.Buffer
	comp.Grow(m.Size)
	for n := 0; n < m.Parts; n++ {
		e, err := kv.Get(ctx, partKey(session, m.Pos, n))
		if err != nil {
			return Snapshot{}, fmt.Errorf("events: snapshot %s part %d: %v: %w", session, n, err, ErrNotFound)
		}
		comp.Write(e.Value())
	}
	if comp.Len() != m.Size || crc32.ChecksumIEEE(comp.Bytes()) != m.CRC {
		return Snapshot{}, fmt.Errorf("events: snapshot %s: checksum mismatch: %w", session, ErrNotFound)
	}
	raw, err := s2.Decode(nil, comp.Bytes())
	if err != nil {
		return Snapshot{}, fmt.Errorf("events: snapshot %s: %v: %w", session, err, ErrNotFound)
	}
	snap := Snapshot{Session: session, Pos: m.Pos, LastSeq: m.LastSeq}
	if err := json.Unmarshal(raw, &snap.Events); err != nil {
		return Snapshot{}, fmt.Errorf("events: snapshot %s: %v: %w", session, err, ErrNotFound)
	}
	return snap, nil
}

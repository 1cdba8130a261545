package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream assets Parley owns.
const (
	// StreamName is the stream holding every session's log.
	StreamName = "PARLEY_EVENTS"
	// SubjectPrefix starts every session subject: SubjectPrefix + id.
	SubjectPrefix = "parley.events."
	// IndexBucket is the KV bucket of session summaries.
	IndexBucket = "PARLEY_SESSIONS"
)

// Subject returns the subject of a session's log.
func Subject(session string) string { return SubjectPrefix + session }

// JetStreamConfig configures a JetStreamStore.
type JetStreamConfig struct {
	// Replicas of the stream and the index bucket. Zero value means 1
	// (the embedded server); a cluster uses 3.
	Replicas int
	// Duplicates is the stream's deduplication window for message ids.
	// Zero value means 2 minutes.
	Duplicates time.Duration
}

// JetStreamStore is the Store and Index on NATS JetStream: one stream
// (StreamName) with one subject per session, and one KV bucket
// (IndexBucket) of summaries. It is safe for concurrent use.
type JetStreamStore struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	index  jetstream.KeyValue
	snaps  jetstream.KeyValue // nil when opened read-only without it
}

var (
	_ Store = (*JetStreamStore)(nil)
	_ Index = (*JetStreamStore)(nil)
)

// NewJetStreamStore creates (or updates) the stream and the bucket and
// returns a store on them.
func NewJetStreamStore(ctx context.Context, js jetstream.JetStream, cfg JetStreamConfig) (*JetStreamStore, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = 2 * time.Minute
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Parley session event logs, one subject per session",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.Duplicates,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("events: create stream %s: %w", StreamName, err)
	}
	index, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      IndexBucket,
		Description: "Parley session summaries, keyed by owner and session",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("events: create bucket %s: %w", IndexBucket, err)
	}
	snaps, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SnapshotBucket,
		Description: "Parley session snapshots (derived from the log; safe to delete)",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("events: create bucket %s: %w", SnapshotBucket, err)
	}
	return &JetStreamStore{js: js, stream: stream, index: index, snaps: snaps}, nil
}

// OpenJetStreamStore opens the existing stream and bucket without creating
// or changing them, for read-only tools such as `parley replay`.
func OpenJetStreamStore(ctx context.Context, js jetstream.JetStream) (*JetStreamStore, error) {
	stream, err := js.Stream(ctx, StreamName)
	if err != nil {
		return nil, fmt.Errorf("events: open stream %s: %w", StreamName, err)
	}
	index, err := js.KeyValue(ctx, IndexBucket)
	if err != nil {
		return nil, fmt.Errorf("events: open bucket %s: %w", IndexBucket, err)
	}
	return &JetStreamStore{js: js, stream: stream, index: index}, nil
}

// msgID names one event for JetStream's deduplication, so that a retried
// publish of the same seq is stored once.
func msgID(session string, seq uint64) string {
	return session + "/" + strconv.FormatUint(seq, 10)
}

// Append publishes evs one by one, each expecting the subject's last
// stream sequence to be the previous one's (optimistic concurrency).
func (s *JetStreamStore) Append(ctx context.Context, session string, pos Position, evs ...Event) (Position, error) {
	subj := Subject(session)
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			return pos, fmt.Errorf("events: encode %s seq %d: %w", ev.Kind, ev.Seq, err)
		}
		ack, err := s.js.Publish(ctx, subj, b,
			jetstream.WithMsgID(msgID(session, ev.Seq)),
			jetstream.WithExpectLastSequencePerSubject(uint64(pos)))
		if err != nil {
			if isConflict(err) {
				if p, ok := s.alreadyAppended(ctx, subj, msgID(session, ev.Seq), b); ok {
					pos = p // a retry of a write that did land
					continue
				}
				return pos, fmt.Errorf("events: append %s seq %d at position %d: %w", ev.Kind, ev.Seq, pos, ErrConflict)
			}
			return pos, fmt.Errorf("events: append %s seq %d: %w", ev.Kind, ev.Seq, err)
		}
		pos = Position(ack.Sequence)
	}
	return pos, nil
}

// alreadyAppended reports whether the subject's last message is the one
// named id with exactly the payload b, and its position. JetStream checks the expected sequence
// before its duplicate window, so a retried write whose first attempt
// landed comes back as a conflict; this tells the two apart.
func (s *JetStreamStore) alreadyAppended(ctx context.Context, subj, id string, b []byte) (Position, bool) {
	msg, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil || msg.Header.Get(jetstream.MsgIDHeader) != id || !bytes.Equal(msg.Data, b) {
		return 0, false
	}
	return Position(msg.Sequence), true
}

// isConflict reports whether err is JetStream's "wrong last sequence",
// which a replicated stream reports as 10164 rather than 10071.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// Last returns the position of the session's last event, or ErrNotFound.
func (s *JetStreamStore) Last(ctx context.Context, session string) (Position, error) {
	msg, err := s.stream.GetLastMsgForSubject(ctx, Subject(session))
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, fmt.Errorf("events: session %s: %w", session, ErrNotFound)
		}
		return 0, fmt.Errorf("events: last of %s: %w", session, err)
	}
	return Position(msg.Sequence), nil
}

// Load reads the session's events after from with an ordered consumer
// filtered on its subject, up to the last event present when it started.
func (s *JetStreamStore) Load(ctx context.Context, session string, from Position) ([]Event, Position, error) {
	last, err := s.Last(ctx, session)
	if err != nil {
		return nil, 0, err
	}
	if last <= from {
		return nil, last, nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{Subject(session)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    uint64(from) + 1,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("events: load %s: %w", session, err)
	}
	var evs []Event
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, 0, fmt.Errorf("events: load %s: %w", session, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return nil, 0, fmt.Errorf("events: load %s: %w", session, err)
			}
			var ev Event
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				return nil, 0, fmt.Errorf("events: load %s: decode stream seq %d: %w", session, meta.Sequence.Stream, err)
			}
			evs = append(evs, ev)
			if Position(meta.Sequence.Stream) >= last {
				return evs, last, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, 0, fmt.Errorf("events: load %s: %w", session, err)
		}
		if n == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, fmt.Errorf("events: load %s: %w", session, err)
			}
		}
	}
}

// indexKey is the KV key of a session's summary: owner (hex, since user
// ids may hold any character) then session id, so that one owner's
// sessions are listed with a single filter.
func indexKey(owner, session string) string {
	return ownerKey(owner) + "." + session
}

func ownerKey(owner string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 2+2*len(owner))
	b = append(b, 'u', '_')
	for i := 0; i < len(owner); i++ {
		b = append(b, hex[owner[i]>>4], hex[owner[i]&0xF])
	}
	return string(b)
}

// PutSession stores the summary of info.ID.
func (s *JetStreamStore) PutSession(ctx context.Context, info SessionInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("events: encode summary %s: %w", info.ID, err)
	}
	if _, err := s.index.Put(ctx, indexKey(info.Owner, info.ID), b); err != nil {
		return fmt.Errorf("events: put summary %s: %w", info.ID, err)
	}
	return nil
}

// ListSessions returns owner's summaries, most recently updated first.
func (s *JetStreamStore) ListSessions(ctx context.Context, owner string) ([]SessionInfo, error) {
	return s.summaries(ctx, ownerKey(owner)+".*", nil)
}

// GeneratingSessions returns the summaries, of any owner, that say a
// generation is running.
func (s *JetStreamStore) GeneratingSessions(ctx context.Context) ([]SessionInfo, error) {
	return s.summaries(ctx, ">", func(i *SessionInfo) bool { return i.Generating })
}

// summaries reads the summaries under the key filter that keep (nil: all)
// accepts, most recently updated first.
func (s *JetStreamStore) summaries(ctx context.Context, filter string, keep func(*SessionInfo) bool) ([]SessionInfo, error) {
	w, err := s.index.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("events: list sessions: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var list []SessionInfo
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("events: list sessions: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("events: list sessions: watcher closed")
			}
			if e == nil { // initial values done
				sortByUpdated(list)
				return list, nil
			}
			var info SessionInfo
			if err := json.Unmarshal(e.Value(), &info); err != nil {
				return nil, fmt.Errorf("events: decode summary %s: %w", e.Key(), err)
			}
			if keep == nil || keep(&info) {
				list = append(list, info)
			}
		}
	}
}

// Sessions calls fn with the id of every session in the log (for tools;
// it reads the stream's subject list).
func (s *JetStreamStore) Sessions(ctx context.Context) ([]string, error) {
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(SubjectPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("events: list subjects: %w", err)
	}
	ids := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		ids = append(ids, subj[len(SubjectPrefix):])
	}
	return ids, nil
}

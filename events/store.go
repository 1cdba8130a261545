package events

import (
	"context"
	"errors"
	"sort"
)

// Position is the JetStream stream sequence of the last event on one
// session's subject, zero when the subject is empty. Appends name the
// position they expect, which makes the session actor's writes optimistic:
// a writer that lost the race gets ErrConflict and reloads instead of
// forking the log.
type Position uint64

// Store is a session event log. Implementations must be safe for concurrent
// use by many sessions; each session has exactly one writer at a time (its
// session actor), which the store enforces through Position.
type Store interface {
	// Append writes evs, which carry consecutive Seq values, to the end of
	// the session's log if the log's last event is at pos. It returns the
	// position of the last appended event. An event whose Seq was already
	// appended (a retried write) is not written twice. If the log moved on,
	// Append returns an error matching ErrConflict and nothing after the
	// conflicting event is written.
	Append(ctx context.Context, session string, pos Position, evs ...Event) (Position, error)

	// Load returns the session's events stored after position from, in
	// order, and the position of the log's last event. A session with no
	// events at all returns ErrNotFound.
	Load(ctx context.Context, session string, from Position) ([]Event, Position, error)
}

// Index keeps one summary per session so that a user's sessions can be
// listed without reading their logs. It is derived data: the log is the
// source of truth and the session actor rewrites the summary as it changes.
type Index interface {
	// PutSession stores or replaces the summary of s.ID.
	PutSession(ctx context.Context, s SessionInfo) error
	// ListSessions returns owner's sessions, most recently updated first.
	ListSessions(ctx context.Context, owner string) ([]SessionInfo, error)
	// GeneratingSessions returns every session whose summary says a
	// generation is running: after a crash, the ones to recover.
	GeneratingSessions(ctx context.Context) ([]SessionInfo, error)
}

// SessionInfo is the summary of a session kept in the Index.
type SessionInfo struct {
	ID         string `json:"id"`
	Owner      string `json:"owner"`
	Title      string `json:"title"`
	Model      string `json:"model"`
	CreatedAt  Time   `json:"created_at"`
	UpdatedAt  Time   `json:"updated_at"`
	LastSeq    uint64 `json:"last_seq"`
	Generating bool   `json:"generating"`
}

// Errors returned by Store and Index implementations. Callers branch on
// them with errors.Is.
var (
	ErrConflict = errors.New("events: log moved on (conflict)")
	ErrNotFound = errors.New("events: not found")
)

// sortByUpdated orders summaries most recently updated first, then by id
// so the order is stable.
func sortByUpdated(list []SessionInfo) {
	sort.Slice(list, func(i, j int) bool {
		ti, tj := list[i].UpdatedAt.Time(), list[j].UpdatedAt.Time()
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return list[i].ID < list[j].ID
	})
}

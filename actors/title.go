package actors

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/llm"
)

// Limits of a generated title.
const (
	titleMaxTokens = 24
	titleMaxBytes  = 80
	titleTimeout   = 2 * time.Minute
	// titleInputBytes caps each message quoted in the title request.
	titleInputBytes = 600
)

// titlePrompt asks the model for a title and nothing else.
const titlePrompt = "Write a title for the conversation below: at most six words, no quotes, no punctuation at the end. Answer with the title only."

// maybeTitle asks for a title after generation gen completed, when the
// session has none and none was asked for in this actor's life. The
// request runs on a goroutine the System owns, waits in the model's line
// like a reply, and its result comes back as a titleResult; a failure is
// only logged: titles never affect the chat.
func (s *sessionActor) maybeTitle(gen uint64) {
	if !s.sys.cfg.Titles || s.titleTried || s.st.info.Title != "" {
		return
	}
	var user, reply string
	for i, t := range s.st.turns {
		if t.seq == gen && t.role == "assistant" && t.content != "" && i > 0 {
			reply, user = t.content, s.st.turns[i-1].content
		}
	}
	if reply == "" {
		return
	}
	s.titleTried = true
	req := llm.Request{
		Model: s.st.info.Model,
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: titlePrompt},
			{Role: llm.RoleUser, Content: "User: " + llm.Truncate(user, titleInputBytes) + "\n\nAssistant: " + llm.Truncate(reply, titleInputBytes)},
		},
		MaxTokens: titleMaxTokens,
	}
	sys, id := s.sys, s.id
	sys.wg.Add(1)
	go func() {
		defer sys.wg.Done()
		title, err := sys.makeTitle(req)
		if err != nil || title == "" {
			sys.log.Info("no title made", slog.String(logKeySession, id), slog.Any(logKeyError, err))
			return
		}
		sys.root.Send(sys.registry, &titleResult{session: id, title: title})
	}()
}

// makeTitle runs one title request. It is cancelled by Shutdown.
func (s *System) makeTitle(req llm.Request) (string, error) {
	ctx, cancel := context.WithTimeout(s.genCtx, titleTimeout)
	defer cancel()
	release, err := s.gate.Acquire(ctx, req.Model, nil)
	if err != nil {
		return "", err
	}
	defer release()
	var b strings.Builder
	if _, err := s.cfg.Provider.Stream(ctx, req, func(d llm.Delta) { b.WriteString(d.Text) }); err != nil {
		return "", err
	}
	return cleanTitle(b.String()), nil
}

// titled appends a generated title, unless the session got one meanwhile
// or cannot be written.
func (s *sessionActor) titled(ctx actor.Context, m *titleResult) {
	if s.missing || s.broken != nil || s.st.info.Title != "" {
		return
	}
	ev := s.event(events.KindSessionTitled, events.SessionTitled{Title: m.title})
	if err := s.append(ev); err != nil {
		s.log.Warn("title not stored", slog.Any(logKeyError, err))
		if errors.Is(err, events.ErrConflict) {
			_, _ = s.writeError(err)
		}
		return
	}
	s.broadcast(ctx, EventFrame(ev))
	s.putIndex()
}

// cleanTitle makes a model's answer a one-line title: the first line with
// text, without a "Title:" label, quotes, markdown marks, control
// characters or a trailing full stop, at most titleMaxBytes.
func cleanTitle(s string) string {
	s = strings.ToValidUTF8(s, "")
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) != "" {
			s = line
			break
		}
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		if r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(strings.ToLower(s), "title:"); i >= 0 && i < 4 {
		s = s[i+len("title:"):]
	}
	s = strings.Trim(s, " \"'`*#_.")
	return strings.TrimSpace(llm.Truncate(s, titleMaxBytes))
}

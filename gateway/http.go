package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/web"
)

// Log attribute keys.
const (
	logKeyError = "error"
)

// statusOf maps a wire error code to its HTTP status (PROTOCOL.md 1).
func statusOf(code string) int {
	switch code {
	case actors.CodeBadRequest:
		return http.StatusBadRequest
	case actors.CodeUnauthorized:
		return http.StatusUnauthorized
	case actors.CodeForbidden:
		return http.StatusForbidden
	case actors.CodeNotFound:
		return http.StatusNotFound
	case actors.CodeBusy, actors.CodeConflict:
		return http.StatusConflict
	case actors.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case actors.CodeRateLimited:
		return http.StatusTooManyRequests
	case actors.CodeUpstreamError:
		return http.StatusBadGateway
	case actors.CodeUpstreamUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, e *actors.Error) {
	var b errorBody
	b.Error.Code, b.Error.Message = e.Code, e.Message
	if e.Code == actors.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
	}
	writeJSON(w, statusOf(e.Code), b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// requestTimeout bounds how long an HTTP handler waits for an actor.
const requestTimeout = 15 * time.Second

// authed runs the common start of an API handler: the user, a context
// with a deadline, and a decoded JSON body when body is not nil.
func (s *Server) authed(w http.ResponseWriter, r *http.Request, body any) (string, context.Context, context.CancelFunc, bool) {
	user, e := s.auth.user(r, false)
	if e != nil {
		writeError(w, e)
		return "", nil, nil, false
	}
	if body != nil {
		if e := decodeBody(w, r, s.cfg.MaxFrameBytes, body); e != nil {
			writeError(w, e)
			return "", nil, nil, false
		}
	}
	ctx, cancel := timeoutCtx(r)
	return user, ctx, cancel, true
}

// timeoutCtx is the request's context with requestTimeout.
func timeoutCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), requestTimeout)
}

// decodeBody reads a JSON object body of at most limit bytes. An empty
// body decodes as {}.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int, v any) *actors.Error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return actors.Errorf(actors.CodeTooLarge, "request body is over %d bytes", limit)
		}
		return actors.Errorf(actors.CodeBadRequest, "could not read the request body")
	}
	if len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return actors.Errorf(actors.CodeBadRequest, "malformed JSON body: %s", jsonProblem(err))
	}
	return nil
}

// replyError writes err, which came from the actor system.
func replyError(w http.ResponseWriter, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		writeError(w, &actors.Error{Code: actors.CodeInternal, Message: "the session did not answer in time"})
		return
	}
	writeError(w, actors.AsError(err))
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(web.Index)
}

// noBody is the body type of an API endpoint that reads none.
type noBody struct{}

// apiHandler is the shape of every API endpoint: the user (auth), a
// deadline, the JSON body decoded into a B (none for noBody), then fn's
// answer written as JSON with status, or its error with the status its
// code maps to.
func apiHandler[B any](s *Server, status int, fn func(ctx context.Context, user string, r *http.Request, b *B) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b B
		var body any = &b
		if _, none := body.(*noBody); none {
			body = nil
		}
		user, ctx, cancel, ok := s.authed(w, r, body)
		if !ok {
			return
		}
		defer cancel()
		v, err := fn(ctx, user, r, &b)
		if err != nil {
			replyError(w, err)
			return
		}
		writeJSON(w, status, v)
	}
}

type createBody struct {
	Model  string `json:"model"`
	System string `json:"system"`
	Title  string `json:"title"`
}

func (s *Server) handleCreate(ctx context.Context, user string, _ *http.Request, b *createBody) (any, error) {
	return s.cfg.System.Create(ctx, user, actors.CreateParams{Model: b.Model, System: b.System, Title: b.Title})
}

func (s *Server) handleList(ctx context.Context, user string, _ *http.Request, _ *noBody) (any, error) {
	list, err := s.cfg.System.List(ctx, user)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []events.SessionInfo{}
	}
	return map[string]any{"sessions": list}, nil
}

func (s *Server) handleDetail(ctx context.Context, user string, r *http.Request, _ *noBody) (any, error) {
	return s.cfg.System.Detail(ctx, user, r.PathValue("id"))
}

type sendBody struct {
	Content     *string `json:"content"`
	ClientMsgID string  `json:"client_msg_id"`
	ExpectSeq   *uint64 `json:"expect_seq"`
}

func (s *Server) handleSend(ctx context.Context, user string, r *http.Request, b *sendBody) (any, error) {
	cmd := actors.Command{Type: actors.CmdSend, Session: r.PathValue("id"), Content: b.Content, ClientMsgID: b.ClientMsgID, ExpectSeq: b.ExpectSeq}
	if e := cmd.Validate(); e != nil {
		return nil, e
	}
	seq, err := s.cfg.System.Send(ctx, user, cmd.Session, actors.SendParams{Content: *b.Content, ClientMsgID: b.ClientMsgID, ExpectSeq: b.ExpectSeq})
	if err != nil {
		return nil, err
	}
	return map[string]any{"seq": seq, "client_msg_id": b.ClientMsgID}, nil
}

func (s *Server) handleStop(ctx context.Context, user string, r *http.Request, _ *noBody) (any, error) {
	stopped, err := s.cfg.System.Stop(ctx, user, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"stopped": stopped}, nil
}

func (s *Server) handleRegenerate(ctx context.Context, user string, r *http.Request, _ *noBody) (any, error) {
	gen, err := s.cfg.System.Regenerate(ctx, user, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"seq": gen}, nil
}

// handleModels lists what the configured provider offers.
func (s *Server) handleModels(ctx context.Context, _ string, _ *http.Request, _ *noBody) (any, error) {
	list, err := s.cfg.System.Models(ctx)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []llm.ModelInfo{}
	}
	return map[string]any{"provider": s.cfg.System.ProviderName(), "models": list}, nil
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Alive != nil {
		if err := s.cfg.Alive(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "dead", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{}
	if s.cfg.Details != nil {
		for k, v := range s.cfg.Details() {
			body[k] = v
		}
	}
	status := http.StatusOK
	body["status"] = "ready"
	if s.draining.Load() {
		status, body["status"] = http.StatusServiceUnavailable, "draining"
	} else if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			status, body["status"], body["error"] = http.StatusServiceUnavailable, "unavailable", err.Error()
		}
	}
	writeJSON(w, status, body)
}

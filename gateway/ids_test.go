package gateway_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// badIDs are session ids that cannot exist: wildcards of NATS subjects,
// separators, spaces, and one far over NATS's control-line limit.
var badIDs = []string{"*", ">", "a.b", "a b", "%2E", strings.Repeat("A", 4100), strings.Repeat("A", 21), strings.Repeat("A", 23), "AAAAAAAAAAAAAAAAAAAAA*"}

// TestSessionIDsThatCannotExist answers every such id not_found, on every
// endpoint and command, and the server stays healthy afterwards: another
// user's data never leaks through a wildcard, and nothing reaches the
// event log's subjects.
func TestSessionIDsThatCannotExist(t *testing.T) {
	t.Parallel()
	s := authStack(t)
	// Alice has a session with a secret in it.
	a := s.dial(aliceKey)
	aid := create(t, a, nil)
	send(t, a, aid, "ALICE SECRET")
	a.Terminal(aid, 3)
	// Bob has the newest session.
	b := s.dial(bobKey)
	create(t, b, nil)

	for _, id := range badIDs {
		esc := url.PathEscape(id)
		for _, req := range []struct{ method, path string }{
			{"GET", "/v1/sessions/" + esc},
			{"POST", "/v1/sessions/" + esc + "/messages"},
			{"POST", "/v1/sessions/" + esc + "/stop"},
			{"POST", "/v1/sessions/" + esc + "/regenerate"},
			{"GET", "/v1/sessions/" + esc + "/events"},
		} {
			var body any
			if strings.HasSuffix(req.path, "/messages") {
				body = map[string]any{"content": "inject"}
			}
			status, resp := s.do(req.method, req.path, bobKey, body)
			if status != http.StatusNotFound || strings.Contains(string(resp), "SECRET") {
				t.Errorf("%s %.60s: %d %.200s, want 404", req.method, req.path, status, resp)
			}
		}
		for _, typ := range []string{"attach", "send", "stop", "regenerate", "detach"} {
			r, _ := b.Reply(b.Command(map[string]any{"type": typ, "session": id, "content": "inject"}))
			if r.Type != "error" || r.Code != "not_found" {
				t.Errorf("%s %.40q: %s, want error not_found", typ, id, r.Raw)
			}
		}
	}
	// Still healthy: ready, and sessions can be made and listed.
	if status, body := s.do("GET", "/readyz", "", nil); status != 200 {
		t.Fatalf("readyz after the bad ids: %d %s", status, body)
	}
	if status, body := s.do("POST", "/v1/sessions", bobKey, nil); status != http.StatusCreated {
		t.Fatalf("create after the bad ids: %d %s", status, body)
	}
	status, body := s.do("GET", "/v1/sessions", bobKey, nil)
	if status != 200 || strings.Contains(string(body), "SECRET") || strings.Count(string(body), `"id"`) != 2 {
		t.Errorf("bob's list: %d %s", status, body)
	}
	// The log has only the real sessions' subjects.
	ids, err := s.nats.Store(t).Sessions(t.Context())
	if err != nil || len(ids) != 3 {
		t.Errorf("sessions in the log: %v %v", ids, err)
	}
}

// TestLongJWTSubject refuses a token whose user id would not fit the
// event log's keys.
func TestLongJWTSubject(t *testing.T) {
	t.Parallel()
	s := authStack(t)
	long := signJWT(t, jwtSecret, jwt.MapClaims{"sub": strings.Repeat("u", 2100)})
	if status, body := s.do("GET", "/v1/sessions", long, nil); status != http.StatusUnauthorized {
		t.Errorf("2,100-byte sub: %d %s", status, body)
	}
	ok := signJWT(t, jwtSecret, jwt.MapClaims{"sub": strings.Repeat("u", 128)})
	if status, body := s.do("GET", "/v1/sessions", ok, nil); status != 200 {
		t.Errorf("128-byte sub: %d %s", status, body)
	}
	if status, _ := s.do("GET", "/readyz", "", nil); status != 200 {
		t.Errorf("readyz: %d", status)
	}
}

package ollama

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ollama/ollama/api"
)

// Line limits of the /api/chat stream: a record starts in a small buffer
// that grows as long records need, up to the limit Ollama's own client
// has.
const (
	initialLineBytes = 4 << 10
	maxLineBytes     = 8 << 20
)

// chat streams a /api/chat request as api.Client.Chat does, byte for byte
// in what it sends and in how it reports errors (api.StatusError for an
// error status, api.AuthorizationError for 401, a plain error for an
// {"error":…} line in a 200 stream, nil when the body ends), but reading
// records with a small growing buffer: api.Client allocates an 8 MB line
// buffer for every request, whose zeroing alone costs about a millisecond
// of time to first token and 8 MB of garbage per generation.
func (p *Provider) chat(ctx context.Context, req *api.ChatRequest, fn func(api.ChatResponse) error) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base.JoinPath("/api/chat").String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/x-ndjson")
	httpReq.Header.Set("User-Agent", userAgent)
	resp, err := p.http.Do(httpReq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, initialLineBytes), maxLineBytes)
	for sc.Scan() {
		line := sc.Bytes()
		var errorResponse struct {
			Error     string `json:"error,omitempty"`
			SigninURL string `json:"signin_url,omitempty"`
		}
		if err := json.Unmarshal(line, &errorResponse); err != nil {
			if resp.StatusCode >= http.StatusBadRequest {
				return api.StatusError{StatusCode: resp.StatusCode, Status: resp.Status, ErrorMessage: string(line)}
			}
			return errors.New(string(line))
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return api.AuthorizationError{StatusCode: resp.StatusCode, Status: resp.Status, SigninURL: errorResponse.SigninURL}
		case resp.StatusCode >= http.StatusBadRequest:
			return api.StatusError{StatusCode: resp.StatusCode, Status: resp.Status, ErrorMessage: errorResponse.Error}
		case errorResponse.Error != "":
			return errors.New(errorResponse.Error)
		}
		var r api.ChatResponse
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	// As api.Client: a read error or an over-long line ends the loop
	// without an error; the transport's record of the body tells them
	// apart (streamTrack).
	return nil
}

// userAgent names Parley and the Ollama API version it speaks.
var userAgent = fmt.Sprintf("parley (ollama-api/%s)", apiVersion)

// apiVersion is the github.com/ollama/ollama module version whose wire
// format this client follows.
const apiVersion = "v0.17.4"

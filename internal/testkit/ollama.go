package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// OllamaHostEnv names the environment variable that points end-to-end tests
// at a real Ollama, e.g. http://127.0.0.1:41234. scripts/ollama-test-env.sh
// start prints the value to use (CI sets it from there).
const OllamaHostEnv = "PARLEY_TEST_OLLAMA_HOST"

// Models created by scripts/ollama-test-env.sh from the tiny random-weight
// GGUF written by internal/tools/tinymodel. Both decode greedily (top_k 1),
// so a prompt always gets the same reply, of random bytes.
const (
	// TinyModel replies with 64 tokens (repeat_penalty 2 keeps it from
	// looping) and ends with a done record.
	TinyModel = "tiny"
	// TinyLoopModel has no repeat penalty: its reply soon repeats one
	// token, and Ollama then ends the stream without a done record, the
	// cut stream a gateway must report as failed.
	TinyLoopModel = "tiny-loop"
	// TinyLongModel replies with up to 4000 tokens (repeat_penalty 2 keeps
	// it from looping, which would end the stream early without a done
	// record).
	TinyLongModel = "tiny-long"
)

var (
	realOllamaMu sync.Mutex
	realOllamaOK = map[string]bool{} // base URLs already verified
)

// RealOllama returns the base URL (scheme://host:port, no trailing slash)
// of a real Ollama server for end-to-end tests, taken from
// PARLEY_TEST_OLLAMA_HOST. It skips the test when that variable is unset,
// and fails it when the server set there does not answer /api/version or
// lacks the model "tiny".
func RealOllama(tb testing.TB) string {
	tb.Helper()
	raw := strings.TrimSpace(os.Getenv(OllamaHostEnv))
	if raw == "" {
		tb.Skip("real Ollama not available: run scripts/ollama-test-env.sh start and set PARLEY_TEST_OLLAMA_HOST (CI does this)")
	}
	base := strings.TrimRight(raw, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}

	realOllamaMu.Lock()
	defer realOllamaMu.Unlock()
	if realOllamaOK[base] {
		return base
	}
	if err := checkRealOllama(base); err != nil {
		tb.Fatalf("%s=%s: %v (is the server from scripts/ollama-test-env.sh start still running?)", OllamaHostEnv, raw, err)
	}
	realOllamaOK[base] = true
	return base
}

func checkRealOllama(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}

	var version struct {
		Version string `json:"version"`
	}
	if err := getJSON(ctx, client, base+"/api/version", &version); err != nil {
		return err
	}
	if version.Version == "" {
		return fmt.Errorf("GET /api/version: no version in reply")
	}

	var tags struct {
		Models []struct {
			Name  string `json:"name"`
			Model string `json:"model"`
		} `json:"models"`
	}
	if err := getJSON(ctx, client, base+"/api/tags", &tags); err != nil {
		return err
	}
	for _, m := range tags.Models {
		for _, name := range []string{m.Name, m.Model} {
			if name == TinyModel || name == TinyModel+":latest" {
				return nil
			}
		}
	}
	return fmt.Errorf("model %q not found in GET /api/tags (Ollama %s)", TinyModel, version.Version)
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode reply: %w", url, err)
	}
	return nil
}

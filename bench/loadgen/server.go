package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetStreamWrites returns, for each stream on the server at natsURL, its
// last sequence: the number of messages ever written to it.
func jetStreamWrites(ctx context.Context, natsURL string) (map[string]uint64, error) {
	nc, err := nats.Connect(natsURL, nats.Name("parley-loadgen"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	lister := js.ListStreams(ctx)
	for info := range lister.Info() {
		out[info.Config.Name] = info.State.LastSeq
	}
	if err := lister.Err(); err != nil {
		return out, fmt.Errorf("list streams: %w", err)
	}
	return out, nil
}

// saveHeapProfile writes the heap profile (after a GC) from a
// net/http/pprof base URL to path.
func saveHeapProfile(ctx context.Context, base, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("heap profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

// RuntimeStats is what a Go server's net/http/pprof says about itself.
type RuntimeStats struct {
	Goroutines int   `json:"goroutines"`
	HeapInuse  int64 `json:"heap_inuse_bytes"`
	HeapAlloc  int64 `json:"heap_alloc_bytes"`
}

// readPprof reads the goroutine count and the heap (after a GC) from a
// net/http/pprof base URL.
func readPprof(ctx context.Context, base string) (RuntimeStats, error) {
	var rs RuntimeStats
	base = strings.TrimRight(base, "/")
	get := func(path string, each func(line string)) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			each(sc.Text())
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return sc.Err()
	}
	err := get("/goroutine?debug=1", func(l string) {
		if n, ok := strings.CutPrefix(l, "goroutine profile: total "); ok {
			rs.Goroutines, _ = strconv.Atoi(strings.TrimSpace(n))
		}
	})
	if err != nil {
		return rs, fmt.Errorf("pprof goroutines: %w", err)
	}
	err = get("/heap?debug=1&gc=1", func(l string) {
		if n, ok := strings.CutPrefix(l, "# HeapInuse = "); ok {
			rs.HeapInuse, _ = strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		}
		if n, ok := strings.CutPrefix(l, "# HeapAlloc = "); ok {
			rs.HeapAlloc, _ = strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		}
	})
	if err != nil {
		return rs, fmt.Errorf("pprof heap: %w", err)
	}
	return rs, nil
}

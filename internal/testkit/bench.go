package testkit

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchPieces are n token-sized pieces of reply text, ASCII and not, for
// the providers' per-token benchmarks.
func BenchPieces(n int) []string {
	words := []string{" the", " model", " streams", " tokens", ",", " é", " 世界", " 😀", "\n", " and"}
	pieces := make([]string, n)
	for i := range pieces {
		pieces[i] = words[i%len(words)]
	}
	return pieces
}

// ReportPerToken reports wall and (where measured) CPU time per token of
// a benchmark that streamed tokens per op since CPUTime was cpu0.
func ReportPerToken(b *testing.B, tokens int, cpu0 time.Duration) {
	n := float64(b.N * tokens)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/token")
	if cpu := CPUTime(); cpu > 0 {
		b.ReportMetric(float64((cpu-cpu0).Nanoseconds())/n, "cpu-ns/token")
	}
}

// PostAndScan is the providers' benchmark baseline: it POSTs body to url
// and only splits the streamed answer into lines with a bufio.Scanner,
// returning how many are not empty.
func PostAndScan(ctx context.Context, client *http.Client, url, body string) (int, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	r.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	lines := 0
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			lines++
		}
	}
	return lines, sc.Err()
}

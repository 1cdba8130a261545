package openai

import (
	"bufio"
	"bytes"
	"testing"
)

// benchBody is an event stream of n content chunks in Ollama's /v1 format,
// then the finish chunk, the usage chunk and [DONE].
func benchBody(n int) []byte {
	words := []string{" the", " model", " streams", " tokens", ",", " é", " 世界", " 😀", "\\n", " and"}
	var b bytes.Buffer
	head := `data: {"id":"chatcmpl-136","object":"chat.completion.chunk","created":1796365063,"model":"tiny","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"`
	for i := range n {
		b.WriteString(head)
		b.WriteString(words[i%len(words)])
		b.WriteString(`"},"finish_reason":null}]}` + "\n\n")
	}
	b.WriteString(head + `"},"finish_reason":"stop"}]}` + "\n\n")
	b.WriteString(`data: {"id":"chatcmpl-136","object":"chat.completion.chunk","created":1796365063,"model":"tiny","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":1000,"total_tokens":1020}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkParse is the CPU cost per chunk of the provider's parsing alone,
// without the network: the SSE reader and the chunk decoder over an
// in-memory body of 1,000 chunks ("parse"), against splitting the same
// bytes into lines with a bufio.Scanner ("scanner").
func BenchmarkParse(b *testing.B) {
	const n = 1000
	body := benchBody(n)
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		var c chunk
		for b.Loop() {
			rd := newSSEReader(bytes.NewReader(body), maxEventBytes)
			texts := 0
			for {
				data, err := rd.next()
				if err != nil {
					b.Fatal(err)
				}
				if bytes.Equal(data, doneMarker) {
					break
				}
				p, err := parseChunk(data, &c)
				if err != nil {
					b.Fatal(err)
				}
				if p.text != "" {
					texts++
				}
			}
			if texts != n {
				b.Fatalf("%d texts", texts)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
	})
	b.Run("scanner", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			sc := bufio.NewScanner(bytes.NewReader(body))
			lines := 0
			for sc.Scan() {
				if len(sc.Bytes()) > 0 {
					lines++
				}
			}
			if lines != n+3 {
				b.Fatalf("%d lines", lines)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
	})
}

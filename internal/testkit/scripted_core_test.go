package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers for the tests that ScriptedOllama and ScriptedOpenAI share.

// post posts body to url and returns the response, whose body is closed
// when t ends.
func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// checkBody checks an answer's body against want: "…x" means it ends
// with x, "~x" that it contains x, anything else that it is want.
func checkBody(t *testing.T, body, want string) {
	t.Helper()
	if x, ok := strings.CutPrefix(want, "…"); ok {
		if !strings.HasSuffix(body, x) {
			t.Errorf("body %q, want it to end with %q", body, x)
		}
	} else if x, ok := strings.CutPrefix(want, "~"); ok {
		if !strings.Contains(body, x) {
			t.Errorf("body %q, want it to contain %q", body, x)
		}
	} else if body != want {
		t.Errorf("body %q, want %q", body, want)
	}
}

// readEach reads r to the end and returns what each Read returned, and
// all of it.
func readEach(r io.Reader) (reads []string, all []byte) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			reads = append(reads, string(buf[:n]))
			all = append(all, buf[:n]...)
		}
		if err != nil {
			return reads, all
		}
	}
}

// recordedRequest is what ScriptedRequest and ScriptedOpenAIRequest both
// tell of a request's end.
type recordedRequest interface {
	Cancelled() <-chan struct{}
	CancelledAt() (time.Time, bool)
	Finished() <-chan struct{}
}

// cancelCase is a scripted server with one script pushed, as testCancel
// uses it.
type cancelCase struct {
	server interface {
		WaitCancelled(tb testing.TB, n int)
		CancelledCount() int
	}
	first func() recordedRequest      // the server's first recorded request
	chat  func(context.Context) error // makes a streaming chat request and reads the answer
}

// testCancel checks that a client that goes away while the script holds,
// blocks or delays is recorded as having cancelled. start starts a server
// with the script pushed.
func testCancel(t *testing.T, start func(t *testing.T, script Script) cancelCase) {
	t.Parallel()
	hold := NewHold()
	for _, tt := range []struct {
		name   string
		script Script
	}{
		{"block", Script{StepContent("x"), StepBlock()}},
		{"hold", Script{StepContent("x"), hold.Step(), StepDone()}},
		{"delay", Script{StepContent("x"), StepDelay(time.Minute), StepDone()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := start(t, tt.script)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			firstByte := make(chan struct{})
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: func() { close(firstByte) }})
			errc := make(chan error, 1)
			go func() { errc <- c.chat(ctx) }()
			<-firstByte
			before := time.Now()
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("client read error %v, want context.Canceled", err)
			}
			c.server.WaitCancelled(t, 1)
			r := c.first()
			<-r.Cancelled()
			if at, ok := r.CancelledAt(); !ok || at.Before(before) {
				t.Errorf("CancelledAt %v %v, cancelled at %v", at, ok, before)
			}
			<-r.Finished()
			if n := c.server.CancelledCount(); n != 1 {
				t.Errorf("CancelledCount %d", n)
			}
		})
	}
}

// echoScript is a configured Script that echoes the request's message.
func echoScript(message string) Script { return TextReply("echo:"+message, 2) }

// testConcurrent pushes n scripts, then makes n+2 concurrent chat
// requests with chat, which returns the answer's body, and checks that n
// took a pushed script and the other 2 echoScript.
func testConcurrent(t *testing.T, n int, push func(...Script), chat func() string) {
	t.Helper()
	for i := range n {
		push(TextReply(fmt.Sprintf("pushed %d", i), 3))
	}
	var wg sync.WaitGroup
	bodies := make([]string, n+2)
	for i := range bodies {
		wg.Go(func() { bodies[i] = chat() })
	}
	wg.Wait()
	pushed, echoed := 0, 0
	for _, b := range bodies {
		switch {
		case strings.Contains(b, `"content":"pus"`):
			pushed++
		case strings.Contains(b, `"content":"ec"`):
			echoed++
		}
	}
	if pushed != n || echoed != 2 {
		t.Errorf("pushed %d echoed %d, want %d and 2", pushed, echoed, n)
	}
}

package gateway_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/testkit"
)

// chromiumPath is the browser the web UI test drives: $PARLEY_TEST_CHROMIUM
// or Debian's /usr/bin/chromium.
func chromiumPath() string {
	if p := os.Getenv("PARLEY_TEST_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// browser is one headless Chromium tab on the page of a stack. It records
// every console error, uncaught exception and browser log error of the
// page, and every request that leaves 127.0.0.1.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

// newBrowser starts a headless Chromium with a fresh profile that only ever
// talks to 127.0.0.1, or skips the test when there is none. The browser is
// closed before the stack stops, so the page never sees the server go away.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath()
	if _, err := os.Stat(exe); err != nil {
		t.Skipf("no Chromium at %s (set PARLEY_TEST_CHROMIUM, or apt-get install chromium): %v", exe, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-proxy-server", true),
		// Any name but 127.0.0.1 fails to resolve: nothing leaves the machine.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(1100, 720),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Starts the browser and opens the tab.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	b := &browser{t: t, ctx: ctx}
	console := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.problem(fmt.Sprintf("console %s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
			} else {
				t.Logf("console %s: %s", m.Type, m.Text)
			}
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			u, perr := url.Parse(ev.Request.URL)
			if perr != nil || (u.Scheme != "data" && u.Hostname() != "127.0.0.1") {
				b.problem("request to " + ev.Request.URL)
			}
		}
	}()
	return b
}

func (b *browser) problem(p string) {
	b.mu.Lock()
	b.problems = append(b.problems, p)
	b.mu.Unlock()
}

// checkClean fails the test on any console error, exception or request
// that left 127.0.0.1 so far.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("page: %s", p)
	}
	b.problems = nil
}

// do runs actions with a deadline.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage: %+v", what, err, b.snap())
	}
}

// pageSnap is what the page shows, read from its DOM.
type pageSnap struct {
	Status       string        `json:"status"`
	Head         string        `json:"head"`
	Hash         string        `json:"hash"`
	Error        string        `json:"error"`
	Sessions     []sessionItem `json:"sessions"`
	Msgs         []msgItem     `json:"msgs"`
	Placeholder  string        `json:"placeholder"`
	SendDisabled bool          `json:"send_disabled"`
	StopDisabled bool          `json:"stop_disabled"`
	Input        string        `json:"input"`
}

type sessionItem struct {
	ID      string `json:"id"`
	Text    string `json:"text"`
	Current bool   `json:"current"`
}

type msgItem struct {
	Class string `json:"class"`
	State string `json:"state"`
	Text  string `json:"text"`
}

const snapJS = `(() => {
  const $ = (id) => document.getElementById(id);
  const txt = (e) => (e ? e.textContent : '');
  return {
    status: txt($('status')),
    head: txt($('chat-head')),
    hash: decodeURIComponent(location.hash.slice(1)),
    error: $('errors').hidden ? '' : txt($('error-text')),
    sessions: [...document.querySelectorAll('#sessions button[data-id]')].map((b) => ({
      id: b.dataset.id, text: b.textContent, current: b.getAttribute('aria-current') === 'true',
    })),
    msgs: [...document.querySelectorAll('#log .msg')].map((m) => ({
      class: m.className, state: txt(m.querySelector('.head .state')), text: txt(m.querySelector('.text')),
    })),
    placeholder: txt(document.querySelector('#log .placeholder')),
    send_disabled: $('send').disabled,
    stop_disabled: $('stop').disabled,
    input: $('input').value,
  };
})()`

func (b *browser) snap() pageSnap {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[pageSnap](snapJS))
	if err != nil {
		b.t.Fatalf("reading the page: %v", err)
	}
	return s
}

// waitFor polls the page until cond holds, and fails with what the page
// showed last.
func (b *browser) waitFor(what string, cond func(pageSnap) bool) pageSnap {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := b.snap()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s; the page shows %+v", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("PARLEY_TEST_SCREENSHOTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
	return p
}

// pressEnter presses Enter in the focused element the way a keyboard does:
// keydown and keyup. (SendKeys with "\r" adds a char event that types a
// newline even when the page cancels the keydown.)
var pressEnter = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
		})
		if err != nil {
			return err
		}
	}
	return nil
})

func connected(s pageSnap) bool { return s.Status == "connected" }

// assistant returns the i-th assistant bubble (0-based), or false.
func (s pageSnap) assistant(i int) (msgItem, bool) {
	for _, m := range s.Msgs {
		if strings.Contains(m.Class, "assistant") {
			if i == 0 {
				return m, true
			}
			i--
		}
	}
	return msgItem{}, false
}

// TestWebUI drives the chat page in headless Chromium against a whole
// stack: a new chat, a streamed reply, a stop mid-stream, a reload that
// brings the history back from the server, and a session picked from the
// sidebar of a fresh page. Any console error or exception, and any request
// that is not for 127.0.0.1, fails it. It skips without Chromium; set
// PARLEY_TEST_SCREENSHOTS to a folder to keep its screenshots.
func TestWebUI(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	b := newBrowser(t) // after newStack: its cleanup runs first
	b.do("opening the page", chromedp.Navigate(s.base+"/"))
	b.waitFor("the socket to connect", connected)
	if snap := b.snap(); len(snap.Sessions) != 0 || len(snap.Msgs) != 0 || !strings.Contains(snap.Head, "Pick a chat") {
		t.Errorf("fresh page: %+v", snap)
	}

	// 1. New chat, one message, a reply streamed in live.
	b.do("clicking New chat", chromedp.Click(chromedp.CSS("#new-form button[type=submit]")))
	snap := b.waitFor("the new session", func(s pageSnap) bool {
		return s.Hash != "" && strings.Contains(s.Head, "id "+s.Hash) && len(s.Sessions) == 1
	})
	id := snap.Hash
	if !snap.Sessions[0].Current || snap.Sessions[0].ID != id {
		t.Errorf("sidebar after create: %+v (session %s)", snap.Sessions, id)
	}

	hold := testkit.NewHold()
	s.upstream.Push(testkit.Script{
		testkit.StepContent("Hello"), testkit.StepContent(", "), hold.Step(),
		testkit.StepDelay(20 * time.Millisecond), testkit.StepContent("browser"),
		testkit.StepDelay(20 * time.Millisecond), testkit.StepContent("!"), testkit.StepDone(),
	})
	b.do("typing and sending a message",
		chromedp.Click(chromedp.ID("input")),
		chromedp.SendKeys(chromedp.ID("input"), "Hi from a real browser"),
		chromedp.Click(chromedp.ID("send")),
	)
	snap = b.waitFor("the first part of the reply, live", func(s pageSnap) bool {
		a, ok := s.assistant(0)
		return ok && a.Text == "Hello, "
	})
	if a, _ := snap.assistant(0); a.State != "generating" || !snap.SendDisabled || snap.StopDisabled {
		t.Errorf("while streaming: reply %+v, send disabled %v, stop disabled %v", a, snap.SendDisabled, snap.StopDisabled)
	}
	if snap.Input != "" {
		t.Errorf("composer still holds %q after send", snap.Input)
	}
	b.screenshot("webui-streaming.png")
	// Reconnect mid-stream (Save in the token form drops the socket and
	// dials again): the page resumes from its cursor, no gap, no duplicate.
	b.do("reconnecting with Save", chromedp.Click(chromedp.CSS("#token-form button[type=submit]")))
	b.waitFor("the socket to come back", connected)
	hold.Release()
	snap = b.waitFor("the completed reply", func(s pageSnap) bool {
		a, ok := s.assistant(0)
		return ok && a.State == "completed"
	})
	if len(snap.Msgs) != 2 || snap.Msgs[0].Class != "msg user" || snap.Msgs[0].Text != "Hi from a real browser" {
		t.Errorf("messages after the turn: %+v", snap.Msgs)
	}
	if a, _ := snap.assistant(0); a.Text != "Hello, browser!" {
		t.Errorf("reply on the page %q, want %q", a.Text, "Hello, browser!")
	}
	if snap.SendDisabled || !snap.StopDisabled || snap.Error != "" {
		t.Errorf("after the turn: send disabled %v, stop disabled %v, error %q", snap.SendDisabled, snap.StopDisabled, snap.Error)
	}
	if got := s.upstream.Requests()[0].Chat.Messages; len(got) != 1 || got[0].Content != "Hi from a real browser" {
		t.Errorf("upstream got %+v", got)
	}
	b.checkClean()

	// 2. Stop mid-stream with the page's Stop button.
	s.upstream.Push(testkit.Script{testkit.StepContent("partial"), testkit.StepBlock()})
	b.do("sending a second message with Enter",
		chromedp.SendKeys(chromedp.ID("input"), "Tell me a long story"),
		pressEnter,
	)
	b.waitFor("the partial reply, and the sidebar marking the session as generating", func(s pageSnap) bool {
		a, ok := s.assistant(1)
		return ok && a.Text == "partial" && !s.StopDisabled && len(s.Sessions) == 1 && strings.Contains(s.Sessions[0].Text, "generating")
	})
	if snap := b.snap(); snap.Input != "" || len(snap.Msgs) != 4 || snap.Msgs[2].Text != "Tell me a long story" {
		t.Errorf("after Enter: composer %q, messages %+v", snap.Input, snap.Msgs)
	}
	b.do("clicking Stop", chromedp.Click(chromedp.ID("stop")))
	snap = b.waitFor("the reply marked stopped", func(s pageSnap) bool {
		a, ok := s.assistant(1)
		return ok && a.State == "stopped"
	})
	s.upstream.WaitCancelled(t, 1)
	b.waitFor("the sidebar to drop the generating mark", func(s pageSnap) bool {
		return len(s.Sessions) == 1 && !strings.Contains(s.Sessions[0].Text, "generating")
	})
	if a, _ := snap.assistant(1); a.Text != "partial" {
		t.Errorf("stopped reply shows %q, want %q", a.Text, "partial")
	}
	if len(snap.Msgs) != 4 || snap.Msgs[2].Text != "Tell me a long story" || snap.SendDisabled || !snap.StopDisabled || snap.Error != "" {
		t.Errorf("after stop: %+v", snap)
	}
	b.screenshot("webui-stopped.png")
	b.checkClean()

	// 3. Reload: the page attaches again and the server replays the log.
	b.do("reloading", chromedp.Reload())
	wantHistory := func(s pageSnap) bool {
		a0, ok0 := s.assistant(0)
		a1, ok1 := s.assistant(1)
		return connected(s) && len(s.Msgs) == 4 && ok0 && ok1 && a0.State == "completed" && a1.State == "stopped" &&
			len(s.Sessions) == 1 && s.Sessions[0].ID == id
	}
	snap = b.waitFor("the history after a reload", wantHistory)
	checkHistory(t, snap, id)
	b.checkClean()

	// 4. A fresh page with no session in its address: pick it in the sidebar.
	b.do("opening the bare page", chromedp.Navigate(s.base+"/"))
	snap = b.waitFor("the session list", func(s pageSnap) bool { return connected(s) && len(s.Sessions) == 1 })
	if len(snap.Msgs) != 0 || snap.Sessions[0].Current {
		t.Errorf("bare page: %+v", snap)
	}
	b.do("picking the session", chromedp.Click(chromedp.CSS(`#sessions button[data-id="`+id+`"]`)))
	snap = b.waitFor("the history of the picked session", wantHistory)
	checkHistory(t, snap, id)
	if snap.Hash != id || !snap.Sessions[0].Current {
		t.Errorf("picked session: hash %q, sidebar %+v", snap.Hash, snap.Sessions)
	}

	// And it takes a new message after the stop and the fresh attach.
	s.upstream.Push(testkit.TokenReply(20*time.Millisecond, "Still", " ", "here", "."))
	b.do("sending a third message",
		chromedp.SendKeys(chromedp.ID("input"), "Are you there?"),
		chromedp.Click(chromedp.ID("send")),
	)
	snap = b.waitFor("the third reply", func(s pageSnap) bool {
		a, ok := s.assistant(2)
		return ok && a.State == "completed"
	})
	if a, _ := snap.assistant(2); a.Text != "Still here." || len(snap.Msgs) != 6 || snap.Msgs[4].Text != "Are you there?" || snap.Error != "" {
		t.Errorf("third turn: %+v", snap)
	}
	b.screenshot("webui-final.png")
	b.checkClean()
}

func checkHistory(t *testing.T, s pageSnap, id string) {
	t.Helper()
	want := []msgItem{
		{Class: "msg user", Text: "Hi from a real browser"},
		{Class: "msg assistant", State: "completed", Text: "Hello, browser!"},
		{Class: "msg user", Text: "Tell me a long story"},
		{Class: "msg assistant", State: "stopped", Text: "partial"},
	}
	if fmt.Sprint(s.Msgs) != fmt.Sprint(want) {
		t.Errorf("history of %s:\n got %+v\nwant %+v", id, s.Msgs, want)
	}
	if !strings.Contains(s.Head, "id "+id) || s.Error != "" {
		t.Errorf("header %q, error %q", s.Head, s.Error)
	}
}

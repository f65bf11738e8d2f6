package listeners

import (
	"context"
	"sync"
	"testing"
	"time"
)

// look is how often a waiting test looks at its condition again.
const look = 5 * time.Millisecond

// until waits until check() holds, looking every few ms, at most timeout; it fails the test
// otherwise.
func until(t testing.TB, what string, timeout time.Duration, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(look)
	}
}

type event struct {
	kind     string // "start" or "stop"
	listener string
	token    int64
	at       time.Time
}

// testApp is a Handler whose listeners run until cancelled; a stop is logged once the
// cancellation has been seen and, with holdStops, release has been closed (and, for a listener
// held, its own release called): a Start that goes on for a while after its context is
// cancelled.
type testApp struct {
	t       testing.TB
	release chan struct{}
	holds   map[string]chan struct{}

	mu       sync.Mutex
	events   []event
	stopping []string
	configs  map[string]string
}

func newApp(t testing.TB, holdStops bool) *testApp {
	a := &testApp{t: t, release: make(chan struct{}), holds: map[string]chan struct{}{},
		configs: map[string]string{}}
	if !holdStops {
		close(a.release)
	}
	return a
}

func (a *testApp) add(kind string, l Listener) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, event{kind, l.String(), l.FencingToken, time.Now()})
}

func (a *testApp) Start(ctx context.Context, l Listener) {
	a.add("start", l)
	a.mu.Lock()
	if l.HasConfig {
		a.configs[l.String()] = l.Config
	}
	a.mu.Unlock()
	<-ctx.Done()
	a.mu.Lock()
	a.stopping = append(a.stopping, l.String())
	held := a.holds[l.String()]
	a.mu.Unlock()
	<-a.release
	if held != nil {
		<-held
	}
	a.add("stop", l)
}

// hold makes listener l's stops go on, once cancelled, until the returned release is called.
func (a *testApp) hold(l string) (release func()) {
	held := make(chan struct{})
	a.mu.Lock()
	a.holds[l] = held
	a.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(held) }) }
}

func (a *testApp) isStopping(l string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.stopping {
		if s == l {
			return true
		}
	}
	return false
}

func (a *testApp) of(kind, l string) []event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []event
	for _, e := range a.events {
		if e.kind == kind && e.listener == l {
			out = append(out, e)
		}
	}
	return out
}

// running is listener → token of what runs now (a start not yet followed by its stop).
func (a *testApp) running() map[string]int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int64{}
	for _, e := range a.events {
		if e.kind == "start" {
			if _, twice := out[e.listener]; twice {
				a.t.Errorf("%s started twice: %v", e.listener, a.events)
			}
			out[e.listener] = e.token
		} else {
			delete(out, e.listener)
		}
	}
	return out
}

func sameRunning(got, want map[string]int64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// served is a Client's Run in a goroutine of the test.
type served struct {
	c      *Client
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func serve(t testing.TB, f *fakeSidecar, h Handler, opts ...Option) *served {
	opts = append([]Option{WithURL(f.url), WithSIGTERM(false),
		WithBackoff(Backoff{Base: 20 * time.Millisecond, Cap: 100 * time.Millisecond})}, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{c: New(opts...), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = s.c.Run(ctx, h)
	}()
	t.Cleanup(func() { s.close(t) })
	return s
}

func (s *served) returned() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// close cancels Run and waits for it to return.
func (s *served) close(t testing.TB) {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Run did not return within 5 s of its context's cancellation")
	}
}

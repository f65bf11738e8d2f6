package listeners

// fakeSidecar stands in for `baton agent`'s HTTP server (crates/baton-agent/src/sidecar.rs) and
// answers as it does, as clients/python/tests/fake_sidecar.py does:
//
//   - GET /listeners — the document, pretty-printed JSON (serde_json's to_vec_pretty: two spaces,
//     `": "`) and a newline, Content-Type application/json; fields in the agent's order, config
//     and validUntil left out when absent; ?wait=<version> answers once the version is greater,
//     or after 30 s with the current one;
//   - POST /ack?version=<v> — 204 (the acknowledged version becomes max(acked, v)), 409 "version
//     <v> was never published (current: <c>)" for a version above the current one, 400 without
//     a version;
//   - GET /healthz — ok; anything else 404;
//   - the first version is the wall clock in milliseconds; each publication adds one;
//   - validUntil is the wall clock now plus the time left, UTC, milliseconds truncated; the
//     document's own is the earliest of its listeners'.
//
// kill is a SIGKILLed sidecar: the port is closed and long polls in flight are cut unanswered.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const longPoll = 30 * time.Second

type listed struct {
	set      string
	id       string
	token    int64
	validFor time.Duration // from publication to its validUntil; 0: 10 s
	config   *string
}

type fakeEntry struct {
	ListenerSet  string  `json:"listenerSet"`
	ID           string  `json:"id"`
	Config       *string `json:"config,omitempty"`
	FencingToken int64   `json:"fencingToken"`
	ValidUntil   string  `json:"validUntil,omitempty"`
}

type fakeDoc struct {
	Version    uint64      `json:"version"`
	Pod        string      `json:"pod"`
	Namespace  string      `json:"namespace"`
	Listeners  []fakeEntry `json:"listeners"`
	ValidUntil string      `json:"validUntil,omitempty"`
}

type ack struct {
	version uint64
	status  int
	at      time.Time
}

type fakeSidecar struct {
	t            testing.TB
	srv          *httptest.Server
	url          string
	port         int
	firstVersion uint64

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) on every change
	doc     fakeDoc
	acked   uint64
	acks    []ack
	polls   []uint64 // the wait of each long poll received
	dead    bool
}

func rfc3339Millis(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")
}

// newFakeSidecar listens on port (0: any free one).
func newFakeSidecar(t testing.TB, port int) *fakeSidecar {
	t.Helper()
	f := &fakeSidecar{
		t:       t,
		changed: make(chan struct{}),
		doc: fakeDoc{Version: uint64(time.Now().UnixMilli()), Pod: "user-service-0-7d4a",
			Namespace: "default", Listeners: []fakeEntry{}},
	}
	f.firstVersion = f.doc.Version
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("listening on port %d: %v", port, err)
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Listener.Close()
	f.srv.Listener = l
	f.srv.Start()
	f.url = f.srv.URL
	f.port = l.Addr().(*net.TCPAddr).Port
	t.Cleanup(f.kill)
	return f
}

// changeLocked wakes whatever waits on the sidecar's state (f.mu held).
func (f *fakeSidecar) changeLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeSidecar) version() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.doc.Version
}

// publish makes a new version listing ls; it returns the version.
func (f *fakeSidecar) publish(ls ...listed) uint64 {
	now := time.Now()
	entries := []fakeEntry{}
	earliest := ""
	for _, l := range ls {
		validFor := l.validFor
		if validFor == 0 {
			validFor = 10 * time.Second
		}
		e := fakeEntry{ListenerSet: l.set, ID: l.id, Config: l.config, FencingToken: l.token,
			ValidUntil: rfc3339Millis(now.Add(validFor))}
		if earliest == "" || e.ValidUntil < earliest {
			earliest = e.ValidUntil
		}
		entries = append(entries, e)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.doc = fakeDoc{Version: f.doc.Version + 1, Pod: f.doc.Pod, Namespace: f.doc.Namespace,
		Listeners: entries, ValidUntil: earliest}
	f.changeLocked()
	return f.doc.Version
}

// acksOf is the successful acknowledgements of version or later.
func (f *fakeSidecar) acksOf(version uint64) []ack {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ack
	for _, a := range f.acks {
		if a.version >= version && a.status == http.StatusNoContent {
			out = append(out, a)
		}
	}
	return out
}

func (f *fakeSidecar) polled(version uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.polls {
		if p == version {
			return true
		}
	}
	return false
}

func (f *fakeSidecar) pollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.polls)
}

func (f *fakeSidecar) isDead() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dead
}

func (f *fakeSidecar) kill() {
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return
	}
	f.dead = true
	f.changeLocked()
	f.mu.Unlock()
	f.srv.Close()
}

// query reads a query as the agent does: k=v pairs split on &, a bare k is k=.
func query(raw string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

func reply(w http.ResponseWriter, code int, body, ctype string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

const usage = "GET /listeners[?wait=<version>], POST /ack?version=<version>, GET /healthz\n"

func (f *fakeSidecar) serve(w http.ResponseWriter, r *http.Request) {
	q := query(r.URL.RawQuery)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/healthz":
		reply(w, 200, "ok\n", "text/plain")
	case r.Method == http.MethodGet && r.URL.Path == "/listeners":
		f.get(w, r, q)
	case r.Method == http.MethodPost && r.URL.Path == "/ack":
		f.post(w, q)
	default:
		reply(w, 404, usage, "text/plain")
	}
}

func (f *fakeSidecar) get(w http.ResponseWriter, r *http.Request, q map[string]string) {
	f.mu.Lock()
	if wait, err := strconv.ParseUint(q["wait"], 10, 64); err == nil {
		f.polls = append(f.polls, wait)
		f.changeLocked()
		deadline := time.NewTimer(longPoll)
		defer deadline.Stop()
	waiting:
		for !f.dead && f.doc.Version <= wait {
			changed := f.changed
			f.mu.Unlock()
			select {
			case <-changed:
			case <-deadline.C:
				f.mu.Lock()
				break waiting
			case <-r.Context().Done():
				return
			}
			f.mu.Lock()
		}
	}
	if f.dead {
		f.mu.Unlock()
		panic(http.ErrAbortHandler) // cut, unanswered
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(f.doc)
	f.mu.Unlock()
	if err != nil {
		f.t.Errorf("rendering the document: %v", err)
	}
	reply(w, 200, body.String(), "application/json")
}

func (f *fakeSidecar) post(w http.ResponseWriter, q map[string]string) {
	v, err := strconv.ParseUint(q["version"], 10, 64)
	if err != nil {
		reply(w, 400, "POST /ack?version=<version>\n", "text/plain")
		return
	}
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	current := f.doc.Version
	if v > current {
		f.acks = append(f.acks, ack{v, 409, time.Now()})
		f.changeLocked()
		f.mu.Unlock()
		reply(w, 409, fmt.Sprintf("version %d was never published (current: %d)\n", v, current), "text/plain")
		return
	}
	f.acked = max(f.acked, v)
	f.acks = append(f.acks, ack{v, 204, time.Now()})
	f.changeLocked()
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusNoContent)
}

// Package listeners runs the listeners the `baton agent` sidecar assigns to this pod, and keeps
// the application's contract for you (docs/listeners.md, "The application's contract"):
//
//  1. it runs exactly what the sidecar lists, each listener with its fencing token (long poll
//     GET /listeners?wait=<version>);
//  2. it stops what is no longer listed (or listed with another token) and acknowledges each
//     version (POST /ack?version=<version>) once every stop that version or an earlier one
//     asked for has returned, without waiting for stops a later version asked for;
//  3. it stops each listener when its validUntil passes, on its own timer, whatever the sidecar
//     says or does not say: validUntil (the node's wall clock) becomes the time left when the
//     document arrives, counted on the monotonic clock;
//  4. with the sidecar gone (connection refused, a restart) it runs on what was last listed
//     until its validUntil, then stops it, and retries with jittered exponential backoff; a
//     restarted sidecar lists nothing at first, so everything is stopped and that acknowledged;
//  5. on SIGTERM (or [Client.Drain]) it keeps following the sidecar, which then lists nothing,
//     and returns once everything is stopped and acknowledged — or, the sidecar gone, once every
//     validUntil has passed.
//
// Each listener is one call of [Handler.Start] in a goroutine of its own; the context it gets
// is cancelled to stop it, and Start returning means it has stopped.
package listeners

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Handler runs listeners.
type Handler interface {
	// Start runs l until ctx is cancelled — l is no longer listed, listed with another fencing
	// token, its validUntil has passed, or Run is returning — and returns once l has stopped: no
	// more writes with its token, its connection closed. Only then is the stop acknowledged,
	// and the listener may run in another pod at once. Start returning while ctx is not
	// cancelled means the listener ended on its own: it is started again, with backoff.
	Start(ctx context.Context, l Listener)
}

// HandlerFunc is a function as a Handler.
type HandlerFunc func(ctx context.Context, l Listener)

// Start calls f(ctx, l).
func (f HandlerFunc) Start(ctx context.Context, l Listener) { f(ctx, l) }

// The sidecar answers a long poll after 30 s at the latest; give up on one after this long.
const (
	pollTimeout = 40 * time.Second
	ackTimeout  = 5 * time.Second
)

type config struct {
	url          string
	backoff      Backoff
	handleSignal bool
	logger       *slog.Logger
}

// Option configures a Client.
type Option func(*config)

// WithURL is the sidecar's URL (http://host:port); default $BATON_AGENT_URL, else DefaultURL.
func WithURL(u string) Option { return func(c *config) { c.url = u } }

// WithBackoff sets the retries' backoff (default DefaultBackoff: 50 ms doubling to 1 s).
func WithBackoff(b Backoff) Option { return func(c *config) { c.backoff = b } }

// WithSIGTERM says whether Run drains on SIGTERM (default true). An application with its own
// SIGTERM handling passes false and calls Drain from it.
func WithSIGTERM(on bool) Option { return func(c *config) { c.handleSignal = on } }

// WithLogger sets where the client logs (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// State is what a listener is doing, in a Running snapshot.
type State string

const (
	StateRunning  State = "running"
	StateStopping State = "stopping"
)

// RunningListener is one listener the application runs (or is stopping), for /healthz and
// metrics.
type RunningListener struct {
	Listener     ListenerID
	FencingToken int64
	State        State
	// ValidFor is the time left until its validUntil (negative once past, 0 while stopping,
	// NoValidUntil when the sidecar sent none).
	ValidFor time.Duration
	// StartedAt is when it was started.
	StartedAt time.Time
}

// NoValidUntil is RunningListener.ValidFor of a listener the sidecar sent no validUntil for.
const NoValidUntil = time.Duration(math.MaxInt64)

type run struct {
	l         Listener
	cancel    context.CancelFunc
	done      chan struct{}
	startedAt time.Time
	reason    string
	// listedIn is the version of the newest document that listed this tenure with its token
	// (0: none), kept up to date while it runs.
	listedIn uint64
	// before is listedIn when the client decided to stop it: an acknowledgement of that
	// version does not cover this stop, one of a later version does.
	before uint64
}

// Client follows one sidecar. Make it with New; Running, SidecarReachable and Drain are safe
// from any goroutine.
type Client struct {
	cfg  config
	http *http.Client

	mu        sync.Mutex
	doc       *document
	listed    map[ListenerID]entry
	running   map[ListenerID]*run
	stopping  map[ListenerID]*run
	acked     uint64 // 0: none (versions start at the wall clock in milliseconds)
	refused   uint64
	reachable bool
	draining  bool
	active    bool

	wake    chan struct{}
	ackWake chan struct{}
}

// New makes a Client; nothing runs until Run.
func New(opts ...Option) *Client {
	cfg := config{url: os.Getenv("BATON_AGENT_URL"), backoff: DefaultBackoff, handleSignal: true}
	if cfg.url == "" {
		cfg.url = DefaultURL
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	cfg.url = strings.TrimRight(cfg.url, "/")
	return &Client{
		cfg: cfg,
		// A connection per exchange (as the agent expects nothing else): a restarted sidecar
		// never meets a connection to its predecessor.
		http:     &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}},
		listed:   map[ListenerID]entry{},
		running:  map[ListenerID]*run{},
		stopping: map[ListenerID]*run{},
		wake:     make(chan struct{}, 1),
		ackWake:  make(chan struct{}, 1),
	}
}

// Run runs the listeners the sidecar lists with h until drained (SIGTERM, see WithSIGTERM,
// or Drain); then it returns nil, everything stopped and acknowledged. Cancelling ctx is
// leaving early: every listener's context is cancelled, Run waits for every Start to return,
// acknowledges nothing more and returns ctx's error.
func Run(ctx context.Context, h Handler, opts ...Option) error {
	return New(opts...).Run(ctx, h)
}

// Drain is rule 5 (Run calls it on SIGTERM): keep following the sidecar, which lists nothing
// once it got its own SIGTERM, and return from Run once everything is stopped and
// acknowledged — or, the sidecar gone, once every validUntil has passed.
func (c *Client) Drain() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	c.poke()
}

// SidecarReachable says whether the last exchange with the sidecar succeeded.
func (c *Client) SidecarReachable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reachable
}

// Version is the version of the last document received (0: none), AckedVersion the last one
// acknowledged.
func (c *Client) Version() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.doc == nil {
		return 0
	}
	return c.doc.version
}

// AckedVersion is the last version the sidecar accepted an acknowledgement of (0: none).
func (c *Client) AckedVersion() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

// Running is a snapshot of what runs and what is stopping, sorted by listener.
func (c *Client) Running() []RunningListener {
	now := time.Now()
	c.mu.Lock()
	out := make([]RunningListener, 0, len(c.running)+len(c.stopping))
	for key, r := range c.running {
		left := time.Duration(0)
		if e, ok := c.listed[key]; ok {
			if e.deadline.IsZero() {
				left = NoValidUntil
			} else {
				left = e.deadline.Sub(now)
			}
		}
		out = append(out, RunningListener{key, r.l.FencingToken, StateRunning, left, r.startedAt})
	}
	for key, r := range c.stopping {
		out = append(out, RunningListener{key, r.l.FencingToken, StateStopping, 0, r.startedAt})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Listener, out[j].Listener
		if a.Set != b.Set {
			return a.Set < b.Set
		}
		return a.ID < b.ID
	})
	return out
}

// poke wakes the main loop and the acknowledger.
func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.pokeAck()
}

func (c *Client) pokeAck() {
	select {
	case c.ackWake <- struct{}{}:
	default:
	}
}

// Run is the package's Run on this client (its options as given to New).
func (c *Client) Run(ctx context.Context, h Handler) error {
	u, err := url.Parse(c.cfg.url)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("the sidecar's URL must be http://host:port, not %q", c.cfg.url)
	}
	c.mu.Lock()
	if c.active {
		c.mu.Unlock()
		return errors.New("listeners: this Client already runs")
	}
	c.active = true
	c.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var helpers sync.WaitGroup
	defer func() {
		// Leaving (drained or early): every listener's context is cancelled and each Start
		// awaited; then the poller and the acknowledger end.
		c.mu.Lock()
		var runs []*run
		for _, r := range c.running {
			runs = append(runs, r)
		}
		for _, r := range c.stopping {
			runs = append(runs, r)
		}
		c.mu.Unlock()
		for _, r := range runs {
			r.cancel()
		}
		for _, r := range runs {
			<-r.done
		}
		cancel()
		helpers.Wait()
		c.mu.Lock()
		c.running = map[ListenerID]*run{}
		c.stopping = map[ListenerID]*run{}
		c.active = false
		c.mu.Unlock()
	}()

	if c.cfg.handleSignal {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		defer signal.Stop(sig)
		helpers.Add(1)
		go func() {
			defer helpers.Done()
			select {
			case <-sig:
				c.cfg.logger.Info("SIGTERM: following the sidecar until every listener has stopped")
				c.Drain()
			case <-ctx.Done():
			}
		}()
	}

	docs := make(chan *document)
	helpers.Add(2)
	go func() { defer helpers.Done(); c.poll(ctx, docs) }()
	go func() { defer helpers.Done(); c.acknowledge(ctx) }()

	for {
		now := time.Now()
		c.mu.Lock()
		c.reconcile(ctx, h, now)
		done := c.finished(now)
		next, ok := c.nextDeadline(now) // conformance: valid-until-timer
		c.mu.Unlock()
		c.pokeAck()
		if done {
			return nil
		}
		var timer <-chan time.Time
		var t *time.Timer
		if ok {
			t = time.NewTimer(next)
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case doc := <-docs:
			c.mu.Lock()
			if c.doc != nil && doc.version < c.doc.version {
				// A sidecar restarted with its clock behind the last one: what was
				// acknowledged to that one says nothing to this one.
				c.acked = 0
			}
			c.doc = doc
			c.listed = make(map[ListenerID]entry, len(doc.listeners))
			for _, e := range doc.listeners {
				c.listed[e.ListenerID] = e
			}
			for key, r := range c.running {
				if e, ok := c.listed[key]; ok && e.FencingToken == r.l.FencingToken {
					r.listedIn = doc.version
				}
			}
			c.mu.Unlock()
		case <-timer:
		case <-c.wake:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// reconcile (c.mu held) stops what runs but must not, and starts what is listed but not running.
func (c *Client) reconcile(ctx context.Context, h Handler, now time.Time) {
	for key, r := range c.running {
		e, listed := c.listed[key]
		reason := ""
		switch {
		case !listed:
			reason = "unlisted"
		case e.FencingToken != r.l.FencingToken:
			reason = "token"
		case e.expired(now):
			reason = "expired"
		}
		if reason == "" {
			continue
		}
		delete(c.running, key)
		r.reason = reason
		// Dropped (or listed with another token): the newest version that listed it, from
		// before the one that dropped it. Expired while listed (the sidecar gone, or silent):
		// the current one.
		r.before = r.listedIn
		c.stopping[key] = r
		c.cfg.logger.Debug("stopping listener", "listener", key.String(), "token", r.l.FencingToken, "reason", reason)
		r.cancel()
	}
	for key, e := range c.listed {
		if _, ok := c.running[key]; ok {
			continue
		}
		if _, ok := c.stopping[key]; ok {
			continue // started again once its stop has returned
		}
		if e.expired(now) {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &run{l: e.Listener, cancel: cancel, done: make(chan struct{}), startedAt: time.Now()}
		if c.doc != nil {
			r.listedIn = c.doc.version
		}
		c.running[key] = r
		go c.runListener(rctx, h, r)
	}
}

// runListener calls Start until its context is cancelled (again, with backoff, should the
// listener end on its own while still listed); then the stop is done, and the acknowledger
// woken: the stop may have been the last one holding a version back.
func (c *Client) runListener(ctx context.Context, h Handler, r *run) {
	defer func() {
		close(r.done)
		c.mu.Lock()
		if c.stopping[r.l.ListenerID] == r {
			delete(c.stopping, r.l.ListenerID)
		}
		c.mu.Unlock()
		c.poke()
	}()
	for attempt := 1; ; attempt++ {
		c.callStart(ctx, h, r.l)
		if ctx.Err() != nil {
			return
		}
		c.cfg.logger.Warn("listener ended on its own; starting it again", "listener", r.l.String())
		t := time.NewTimer(c.cfg.backoff.Delay(attempt, nil))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (c *Client) callStart(ctx context.Context, h Handler, l Listener) {
	defer func() {
		if p := recover(); p != nil {
			c.cfg.logger.Error("listener panicked", "listener", l.String(), "panic", fmt.Sprint(p))
		}
	}()
	h.Start(ctx, l)
}

// nextDeadline (c.mu held): the time until the soonest validUntil of what runs.
func (c *Client) nextDeadline(now time.Time) (time.Duration, bool) {
	var soonest time.Time
	for key := range c.running {
		e, ok := c.listed[key]
		if !ok || e.deadline.IsZero() {
			continue
		}
		if soonest.IsZero() || e.deadline.Before(soonest) {
			soonest = e.deadline
		}
	}
	if soonest.IsZero() {
		return 0, false
	}
	return max(0, soonest.Sub(now)), true
}

// finished (c.mu held): drained — nothing runs or stops, nothing listed is still valid, and the
// last document is acknowledged (or the sidecar is gone, or what it listed has expired).
func (c *Client) finished(now time.Time) bool {
	if !c.draining || len(c.running) > 0 || len(c.stopping) > 0 {
		return false
	}
	for _, e := range c.listed {
		if !e.expired(now) {
			return false // the sidecar still lists something: keep following it
		}
	}
	if c.doc == nil || len(c.doc.listeners) > 0 {
		return true // never reached the sidecar, or what it listed has expired
	}
	return c.doc.version == c.acked || c.doc.version == c.refused || !c.reachable
}

// ackable (c.mu held): the version to acknowledge — the newest one whose dropped listeners
// have all stopped. An acknowledgement of a version says that everything it and every earlier
// version dropped has stopped, so that is the last one received when nothing is stopping, else
// the oldest before of what is stopping: each version is acknowledged once every stop it or an
// earlier one asked for has returned, without waiting for stops a later version asked for.
// Nothing when there is nothing new to acknowledge, or while something running is not listed
// with its token.
func (c *Client) ackable() (uint64, bool) {
	if c.doc == nil {
		return 0, false
	}
	for key, r := range c.running {
		e, ok := c.listed[key]
		if !ok || e.FencingToken != r.l.FencingToken {
			return 0, false
		}
	}
	candidate := c.oldestStopBefore(c.doc.version) // conformance: ack-after-stop
	if candidate == 0 || candidate <= c.acked || candidate == c.refused {
		return 0, false
	}
	return candidate, true
}

// oldestStopBefore (c.mu held): the oldest before of what is stopping; newest when nothing is.
func (c *Client) oldestStopBefore(newest uint64) uint64 {
	oldest := newest
	for _, r := range c.stopping {
		oldest = min(oldest, r.before)
	}
	return oldest
}

func (c *Client) setReachable(ok bool) {
	c.mu.Lock()
	c.reachable = ok
	c.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Client) acknowledge(ctx context.Context) {
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.ackWake:
		}
		for {
			c.mu.Lock()
			version, ok := c.ackable()
			c.mu.Unlock()
			if !ok {
				break
			}
			status, body, err := c.exchange(ctx, http.MethodPost, "/ack?version="+strconv.FormatUint(version, 10), ackTimeout)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				c.setReachable(false)
				failures++
				c.cfg.logger.Debug("acknowledging failed", "version", version, "error", err)
				if !sleep(ctx, c.cfg.backoff.Delay(failures, nil)) {
					return
				}
				continue
			}
			switch {
			case status >= 200 && status < 300:
				failures = 0
				c.mu.Lock()
				c.acked = version
				c.mu.Unlock()
			case status == http.StatusConflict:
				// Not a version of this sidecar (it restarted): its own document comes next.
				failures = 0
				c.cfg.logger.Info("the sidecar refused an acknowledgement", "version", version, "answer", strings.TrimSpace(string(body)))
				c.mu.Lock()
				c.refused = version
				c.mu.Unlock()
			default:
				failures++
				c.cfg.logger.Warn("acknowledging failed", "version", version, "status", status, "answer", strings.TrimSpace(string(body)))
				if !sleep(ctx, c.cfg.backoff.Delay(failures, nil)) {
					return
				}
				continue
			}
			select { // the main loop: a drain may be over
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (c *Client) poll(ctx context.Context, docs chan<- *document) {
	var version uint64
	failures := 0
	for ctx.Err() == nil {
		doc, err := c.fetch(ctx, version)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// Rule 4: the last document stays in force, each listener until its validUntil.
			if c.SidecarReachable() || failures == 0 {
				c.cfg.logger.Warn("the sidecar cannot be reached; running on until validUntil", "url", c.cfg.url, "error", err)
			}
			c.setReachable(false)
			failures++
			if !sleep(ctx, c.cfg.backoff.Delay(failures, nil)) {
				return
			}
			continue
		}
		if failures > 0 {
			c.cfg.logger.Info("the sidecar answers again", "url", c.cfg.url, "version", doc.version)
		}
		failures = 0
		c.setReachable(true)
		version = doc.version
		select {
		case docs <- doc:
		case <-ctx.Done():
			return
		}
	}
}

func (c *Client) fetch(ctx context.Context, version uint64) (*document, error) {
	status, body, err := c.exchange(ctx, http.MethodGet, "/listeners?wait="+strconv.FormatUint(version, 10), pollTimeout)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(body)))
	}
	return parseDocument(body, time.Now(), time.Now())
}

// exchange is one request on a connection of its own; (status, body).
func (c *Client) exchange(ctx context.Context, method, target string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.url+target, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, body, nil
}

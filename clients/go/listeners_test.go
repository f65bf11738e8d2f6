package listeners

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	A = "sxt/listener1"
	B = "sxt/listener2"
	C = "sxt/listener3"
	// late is how late the client's timer may fire on a loaded machine.
	late = 250 * time.Millisecond
	// early: validUntil is truncated to milliseconds.
	early = 2 * time.Millisecond
)

func l1(token int64, validFor time.Duration) listed {
	return listed{set: "sxt", id: "listener1", token: token, validFor: validFor}
}

func l2(token int64, validFor time.Duration) listed {
	return listed{set: "sxt", id: "listener2", token: token, validFor: validFor}
}

func l3(token int64, validFor time.Duration) listed {
	return listed{set: "sxt", id: "listener3", token: token, validFor: validFor}
}

func onTime(t *testing.T, what string, at, published time.Time, validFor time.Duration) {
	t.Helper()
	want := published.Add(validFor)
	if at.Before(want.Add(-early)) || at.After(want.Add(late)) {
		t.Errorf("%s stopped %v after publication, want %v (+%v)", what, at.Sub(published), validFor, late)
	}
}

func TestRunsWhatIsListedWithItsTokenAndRestartsOnANewToken(t *testing.T) {
	f := newFakeSidecar(t, 0)
	app := newApp(t, false)
	s := serve(t, f, app)
	secret := "secret-1"
	f.publish(listed{set: "sxt", id: "listener1", token: 3, config: &secret}, l2(8, 0))
	until(t, "both running", 5*time.Second, func() bool { return sameRunning(app.running(), map[string]int64{A: 3, B: 8}) })
	if app.configs[A] != "secret-1" {
		t.Errorf("listener1's config: %q", app.configs[A])
	}
	// A handover and back gave listener1 a higher token: stop the old tenure, then start anew.
	v := f.publish(l1(4, 0), l2(8, 0))
	until(t, "listener1 on token 4", 5*time.Second, func() bool { return app.running()[A] == 4 })
	stop, start := app.of("stop", A)[0], app.of("start", A)[1]
	if stop.token != 3 || start.at.Before(stop.at) {
		t.Errorf("the old tenure's stop %+v, the new one's start %+v", stop, start)
	}
	if n := len(app.of("start", B)); n != 1 {
		t.Errorf("listener2 started %d times, want it left running", n)
	}
	until(t, "the version acknowledged", 5*time.Second, func() bool { return len(f.acksOf(v)) > 0 })
	got := s.c.Running()
	if len(got) != 2 || got[0].Listener.String() != A || got[0].FencingToken != 4 || got[0].State != StateRunning ||
		got[1].Listener.String() != B || got[1].FencingToken != 8 || got[1].State != StateRunning {
		t.Errorf("Running() = %+v", got)
	}
	if got[0].ValidFor <= 0 || got[0].ValidFor > 10*time.Second {
		t.Errorf("listener1 valid for %v", got[0].ValidFor)
	}
	s.close(t)
	if !errors.Is(s.err, context.Canceled) {
		t.Errorf("Run returned %v after its context's cancellation", s.err)
	}
	if r := app.running(); len(r) != 0 {
		t.Errorf("leaving Run left %v running", r)
	}
}

func TestAStopIsAcknowledgedOnlyOnceStartHasReturned(t *testing.T) {
	f := newFakeSidecar(t, 0)
	app := newApp(t, true) // each Start goes on after its cancellation until released
	s := serve(t, f, app)
	first := f.publish(l1(3, 0), l2(5, 0))
	until(t, "running", 5*time.Second, func() bool { return len(app.running()) == 2 })
	until(t, "the first version acknowledged", 5*time.Second, func() bool { return len(f.acksOf(first)) > 0 })
	dropped := f.publish(l2(5, 0))
	until(t, "listener1 cancelled", 5*time.Second, func() bool { return app.isStopping(A) })
	// The client has the new version (it long-polls past it) while listener1's Start runs on.
	until(t, "a poll past the new version", 5*time.Second, func() bool { return f.polled(dropped) })
	heldFrom := time.Now()
	time.Sleep(300 * time.Millisecond) // a Start that takes 300 ms to return after cancellation
	if a := f.acksOf(dropped); len(a) != 0 {
		t.Fatalf("acknowledged while listener1's Start had not returned: %+v", a)
	}
	if r := s.c.Running(); len(r) != 2 || r[0].State != StateStopping || r[1].State != StateRunning {
		t.Errorf("Running() while listener1 stops: %+v", r)
	}
	close(app.release)
	until(t, "the acknowledgement", 5*time.Second, func() bool { return len(f.acksOf(dropped)) > 0 })
	stopped, acked := app.of("stop", A)[0], f.acksOf(dropped)[0]
	if !heldFrom.Before(stopped.at) || acked.at.Before(stopped.at) {
		t.Errorf("held from %v, stopped at %v, acknowledged at %v", heldFrom, stopped.at, acked.at)
	}
}

// states is listener → state of a Running snapshot.
func states(r []RunningListener) map[string]State {
	out := map[string]State{}
	for _, l := range r {
		out[l.Listener.String()] = l.State
	}
	return out
}

// stopsInAStream: listener1, 2 and 3 run and their version is acknowledged; then one version
// drops listener1 and the next listener2, each stop held until its release is called, while
// the one before still runs.
func stopsInAStream(t *testing.T) (*fakeSidecar, *testApp, *served, func(), func(), uint64, uint64) {
	t.Helper()
	f := newFakeSidecar(t, 0)
	app := newApp(t, false)
	s := serve(t, f, app)
	releaseA, releaseB := app.hold(A), app.hold(B)
	t.Cleanup(releaseA)
	t.Cleanup(releaseB)
	all := f.publish(l1(3, 0), l2(4, 0), l3(5, 0))
	until(t, "running", 5*time.Second, func() bool { return len(app.running()) == 3 })
	until(t, "the first version acknowledged", 5*time.Second, func() bool { return len(f.acksOf(all)) > 0 })
	// Stops in a stream: each version drops one more listener while the last one's stop runs.
	dropsA := f.publish(l2(4, 0), l3(5, 0))
	until(t, "listener1 cancelled", 5*time.Second, func() bool { return app.isStopping(A) })
	dropsB := f.publish(l3(5, 0))
	until(t, "listener2 cancelled", 5*time.Second, func() bool { return app.isStopping(B) })
	return f, app, s, releaseA, releaseB, dropsA, dropsB
}

func TestEachVersionIsAcknowledgedOnceTheStopsItOrAnEarlierOneAskedForHaveReturned(t *testing.T) {
	f, app, s, releaseA, releaseB, dropsA, dropsB := stopsInAStream(t)
	// listener1's Start returns while listener2's runs on: the version that dropped listener1
	// is acknowledged now, not once listener2 has stopped too.
	releaseA()
	until(t, "the version that dropped listener1 acknowledged", 5*time.Second, func() bool {
		return len(f.acksOf(dropsA)) > 0
	})
	if a := f.acksOf(dropsB); len(a) != 0 {
		t.Fatalf("acknowledged %+v while listener2's Start had not returned", a)
	}
	if got := states(s.c.Running()); len(got) != 2 || got[B] != StateStopping || got[C] != StateRunning {
		t.Errorf("Running() while listener2 stops: %v", got)
	}
	releaseB()
	until(t, "the version that dropped listener2 acknowledged", 5*time.Second, func() bool {
		return len(f.acksOf(dropsB)) > 0
	})
	until(t, "listener2 stopped", 5*time.Second, func() bool { return len(app.of("stop", B)) == 1 })
	stopA, stopB := app.of("stop", A)[0], app.of("stop", B)[0]
	if a := f.acksOf(dropsA)[0]; a.version != dropsA || a.at.Before(stopA.at) || stopB.at.Before(a.at) {
		t.Errorf("acknowledged %+v; listener1 stopped at %v, listener2 at %v", a, stopA.at, stopB.at)
	}
	if a := f.acksOf(dropsB)[0]; a.at.Before(stopB.at) {
		t.Errorf("acknowledged %+v before listener2 stopped at %v", a, stopB.at)
	}
}

func TestAStopThatEndsBeforeAnEarlierVersionsStopAcknowledgesNothingYet(t *testing.T) {
	f, app, s, releaseA, releaseB, dropsA, dropsB := stopsInAStream(t)
	// listener2's Start returns first: every version from the one that dropped listener1 on
	// still waits for listener1.
	releaseB()
	until(t, "listener2's stop seen by the client", 5*time.Second, func() bool {
		got := states(s.c.Running())
		return len(got) == 2 && got[A] == StateStopping && got[C] == StateRunning
	})
	s.c.mu.Lock()
	version, ok := s.c.ackable()
	s.c.mu.Unlock()
	if ok {
		t.Fatalf("version %d acknowledgeable while listener1's Start had not returned", version)
	}
	releaseA()
	until(t, "listener1 stopped", 5*time.Second, func() bool { return len(app.of("stop", A)) == 1 })
	until(t, "the last version acknowledged", 5*time.Second, func() bool { return len(f.acksOf(dropsB)) > 0 })
	stopA := app.of("stop", A)[0]
	for _, a := range f.acksOf(dropsA) {
		if a.at.Before(stopA.at) {
			t.Errorf("acknowledged %+v before listener1 stopped at %v", a, stopA.at)
		}
	}
}

func TestAListenerStopsAtValidUntilWhileTheSidecarIsSilent(t *testing.T) {
	f := newFakeSidecar(t, 0)
	app := newApp(t, false)
	serve(t, f, app)
	published := time.Now()
	f.publish(l1(3, 600*time.Millisecond), l2(4, 30*time.Second))
	until(t, "running", 5*time.Second, func() bool { return len(app.running()) == 2 })
	version := f.version()
	until(t, "listener1 stopped", 3*time.Second, func() bool { return len(app.of("stop", A)) == 1 })
	// The sidecar published nothing new: the client's own timer stopped it, on time.
	if f.version() != version {
		t.Fatal("the sidecar published meanwhile")
	}
	onTime(t, "listener1", app.of("stop", A)[0].at, published, 600*time.Millisecond)
	if r := app.running(); !sameRunning(r, map[string]int64{B: 4}) {
		t.Errorf("running %v", r)
	}
	// Listed again with a later validUntil (the agent renewed): it runs again, same token.
	f.publish(l1(3, 30*time.Second), l2(4, 30*time.Second))
	until(t, "listener1 running again", 5*time.Second, func() bool {
		return sameRunning(app.running(), map[string]int64{A: 3, B: 4})
	})
}

func TestWithTheSidecarGoneListenersRunOnUntilValidUntilThenStop(t *testing.T) {
	f := newFakeSidecar(t, 0)
	app := newApp(t, false)
	s := serve(t, f, app)
	published := time.Now()
	f.publish(l1(3, time.Second), l2(4, 1500*time.Millisecond))
	until(t, "running", 5*time.Second, func() bool { return len(app.running()) == 2 })
	f.kill()
	until(t, "the client sees the sidecar gone", 5*time.Second, func() bool { return !s.c.SidecarReachable() })
	// Connection refused is neither "stop nothing" nor "stop everything now".
	if r := app.running(); !sameRunning(r, map[string]int64{A: 3, B: 4}) {
		t.Fatalf("running %v once the sidecar is gone", r)
	}
	until(t, "listener1 stopped", 3*time.Second, func() bool { return len(app.of("stop", A)) == 1 })
	onTime(t, "listener1", app.of("stop", A)[0].at, published, time.Second)
	if r := app.running(); !sameRunning(r, map[string]int64{B: 4}) {
		t.Errorf("running %v", r)
	}
	until(t, "listener2 stopped", 3*time.Second, func() bool { return len(app.of("stop", B)) == 1 })
	onTime(t, "listener2", app.of("stop", B)[0].at, published, 1500*time.Millisecond)
	if s.c.SidecarReachable() {
		t.Error("the sidecar reachable")
	}
}

func TestARestartedSidecarIsFollowedAndItsEmptyDocumentAcknowledged(t *testing.T) {
	f := newFakeSidecar(t, 0)
	app := newApp(t, true)
	s := serve(t, f, app)
	old := f.publish(l1(3, 20*time.Second))
	until(t, "running", 5*time.Second, func() bool { return sameRunning(app.running(), map[string]int64{A: 3}) })
	until(t, "acknowledged", 5*time.Second, func() bool { return len(f.acksOf(old)) > 0 })
	f.kill()
	until(t, "the client sees the sidecar gone", 5*time.Second, func() bool { return !s.c.SidecarReachable() })
	// The container restarts: same port, an empty document, versions from the wall clock.
	n := newFakeSidecar(t, f.port)
	if n.version() <= old {
		t.Fatalf("the new sidecar's version %d is not above %d", n.version(), old)
	}
	until(t, "listener1 cancelled", 5*time.Second, func() bool { return app.isStopping(A) })
	until(t, "a poll of the new sidecar", 5*time.Second, func() bool { return n.pollCount() > 0 })
	if a := n.acksOf(n.firstVersion); len(a) != 0 {
		t.Fatalf("acknowledged before listener1 stopped: %+v", a)
	}
	close(app.release)
	until(t, "the new sidecar's empty document acknowledged", 5*time.Second, func() bool {
		return len(n.acksOf(n.firstVersion)) > 0
	})
	if stop, a := app.of("stop", A)[0], n.acksOf(n.firstVersion)[0]; a.at.Before(stop.at) {
		t.Errorf("acknowledged at %v, before the stop at %v", a.at, stop.at)
	}
	// The new sidecar renewed the Lease: it lists listener1 again.
	n.publish(l1(3, 20*time.Second))
	until(t, "listener1 runs again", 5*time.Second, func() bool { return sameRunning(app.running(), map[string]int64{A: 3}) })
}

func TestAListenerThatEndsOnItsOwnIsStartedAgain(t *testing.T) {
	f := newFakeSidecar(t, 0)
	var mu sync.Mutex
	var starts []int64
	flaky := HandlerFunc(func(ctx context.Context, l Listener) {
		mu.Lock()
		starts = append(starts, l.FencingToken)
		n := len(starts)
		mu.Unlock()
		switch n {
		case 1:
			return // the upstream hung up
		case 2:
			panic("the upstream misbehaved")
		}
		<-ctx.Done()
	})
	s := serve(t, f, flaky, WithBackoff(Backoff{Base: 10 * time.Millisecond, Cap: 50 * time.Millisecond}))
	f.publish(l1(6, 0))
	until(t, "three starts", 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(starts) == 3 })
	mu.Lock()
	if starts[0] != 6 || starts[1] != 6 || starts[2] != 6 {
		t.Errorf("starts %v", starts)
	}
	mu.Unlock()
	if r := s.c.Running(); len(r) != 1 || r[0].State != StateRunning {
		t.Errorf("Running() = %+v", r)
	}
}

func TestSIGTERMFollowsTheSidecarUntilItListsNothingThenReturns(t *testing.T) {
	f := newFakeSidecar(t, 0)
	app := newApp(t, false)
	s := serve(t, f, app, WithSIGTERM(true))
	f.publish(l1(3, 0), l2(4, 0))
	until(t, "running", 5*time.Second, func() bool { return len(app.running()) == 2 })
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Still listed: keep running (the sidecar stops them one version at a time).
	one := f.publish(l2(4, 0))
	until(t, "listener1 stopped", 5*time.Second, func() bool { return sameRunning(app.running(), map[string]int64{B: 4}) })
	until(t, "its version acknowledged", 5*time.Second, func() bool { return len(f.acksOf(one)) > 0 })
	until(t, "a poll past it", 5*time.Second, func() bool { return f.polled(one) })
	if s.returned() {
		t.Fatal("Run returned while the sidecar still lists listener2")
	}
	empty := f.publish()
	until(t, "Run returned", 5*time.Second, s.returned)
	if s.err != nil {
		t.Errorf("Run returned %v", s.err)
	}
	if r := app.running(); len(r) != 0 {
		t.Errorf("running %v", r)
	}
	if len(f.acksOf(empty)) == 0 {
		t.Error("Run returned before acknowledging the empty document")
	}
}

func TestDrainWithTheSidecarGoneReturnsOnceEveryValidUntilHasPassed(t *testing.T) {
	f := newFakeSidecar(t, 0)
	app := newApp(t, false)
	s := serve(t, f, app)
	published := time.Now()
	f.publish(l1(3, time.Second))
	until(t, "running", 5*time.Second, func() bool { return sameRunning(app.running(), map[string]int64{A: 3}) })
	f.kill()
	s.c.Drain()
	until(t, "the client sees the sidecar gone", 5*time.Second, func() bool { return !s.c.SidecarReachable() })
	if s.returned() || !sameRunning(app.running(), map[string]int64{A: 3}) {
		t.Fatal("drained before validUntil")
	}
	until(t, "Run returned", 3*time.Second, s.returned)
	if s.err != nil {
		t.Errorf("Run returned %v", s.err)
	}
	stops := app.of("stop", A)
	if len(stops) != 1 {
		t.Fatalf("stops %+v", stops)
	}
	onTime(t, "listener1", stops[0].at, published, time.Second)
}

func TestDrainBeforeTheSidecarEverAnsweredReturns(t *testing.T) {
	f := newFakeSidecar(t, 0)
	f.kill()
	s := serve(t, f, newApp(t, false))
	until(t, "a failed poll", 5*time.Second, func() bool { return !s.c.SidecarReachable() })
	s.c.Drain()
	until(t, "Run returned", 5*time.Second, s.returned)
	if s.err != nil {
		t.Errorf("Run returned %v", s.err)
	}
}

func TestCancellingRunWaitsForEveryStartEvenWhileStopsAreHeld(t *testing.T) {
	f := newFakeSidecar(t, 0)
	app := newApp(t, true)
	s := serve(t, f, app)
	f.publish(l1(3, 0), l2(4, 0))
	until(t, "running", 5*time.Second, func() bool { return len(app.running()) == 2 })
	dropped := f.publish(l2(4, 0))
	until(t, "listener1 cancelled", 5*time.Second, func() bool { return app.isStopping(A) })
	s.cancel()
	until(t, "listener2 cancelled", 5*time.Second, func() bool { return app.isStopping(B) })
	if s.returned() {
		t.Fatal("Run returned before its Starts did")
	}
	close(app.release)
	until(t, "Run returned", 5*time.Second, s.returned)
	if r := app.running(); len(r) != 0 {
		t.Errorf("running %v", r)
	}
	if a := f.acksOf(dropped); len(a) != 0 {
		t.Errorf("acknowledged after Run's context was cancelled: %+v", a)
	}
}

func TestABadURLIsAnError(t *testing.T) {
	if err := New(WithURL("https://example.com:8686"), WithSIGTERM(false)).Run(context.Background(), newApp(t, false)); err == nil {
		t.Error("Run accepted an https URL")
	}
}

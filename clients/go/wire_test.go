package listeners

import (
	"math/rand/v2"
	"testing"
	"time"
)

const agentDocument = `{
  "version": 1767931200123,
  "pod": "user-service-0-7d4a",
  "namespace": "default",
  "listeners": [
    {
      "listenerSet": "sxt",
      "id": "listener1",
      "config": "token…",
      "fencingToken": 4,
      "validUntil": "2026-01-10T10:00:04.500Z"
    },
    {
      "listenerSet": "sxt",
      "id": "listener2",
      "fencingToken": 7
    }
  ],
  "validUntil": "2026-01-10T10:00:04.500Z"
}
`

func TestTheAgentsDocumentIsRead(t *testing.T) {
	wall := time.Date(2026, 1, 10, 10, 0, 0, 0, time.UTC) // 4.5 s before validUntil
	now := time.Now()
	doc, err := parseDocument([]byte(agentDocument), now, wall)
	if err != nil {
		t.Fatal(err)
	}
	if doc.version != 1767931200123 || doc.pod != "user-service-0-7d4a" || doc.namespace != "default" || len(doc.listeners) != 2 {
		t.Fatalf("%+v", doc)
	}
	a, b := doc.listeners[0], doc.listeners[1]
	if a.String() != "sxt/listener1" || !a.HasConfig || a.Config != "token…" || a.FencingToken != 4 {
		t.Errorf("%+v", a)
	}
	if !a.ValidUntil.Equal(time.Date(2026, 1, 10, 10, 0, 4, 500_000_000, time.UTC)) {
		t.Errorf("validUntil %v", a.ValidUntil)
	}
	// The deadline is the time left when the document arrived, on the monotonic clock.
	if a.deadline.Sub(now) != 4500*time.Millisecond {
		t.Errorf("deadline %v after arrival", a.deadline.Sub(now))
	}
	if a.expired(now.Add(4499*time.Millisecond)) || !a.expired(now.Add(4500*time.Millisecond)) {
		t.Error("expiry not at the deadline")
	}
	if b.HasConfig || !b.ValidUntil.IsZero() || !b.deadline.IsZero() || b.expired(now.Add(1000*time.Hour)) {
		t.Errorf("a listener without config or validUntil: %+v", b)
	}
}

func TestValidUntilWithAnOffsetAndMoreDigits(t *testing.T) {
	body := `{"version": 2, "pod": "p", "namespace": "n", "listeners": [
		{"listenerSet": "s", "id": "i", "fencingToken": 1, "validUntil": "2026-01-10T11:00:04.123456789+01:00"}]}`
	wall := time.Date(2026, 1, 10, 10, 0, 4, 0, time.UTC)
	now := time.Now()
	doc, err := parseDocument([]byte(body), now, wall)
	if err != nil {
		t.Fatal(err)
	}
	if d := doc.listeners[0].deadline.Sub(now); d != 123456789*time.Nanosecond {
		t.Errorf("deadline %v after arrival", d)
	}
}

func TestNotADocumentIsAnError(t *testing.T) {
	for _, body := range []string{
		``, `[]`, `{"pod": "p", "listeners": []}`, `{"version": 1}`, `{"version": "1", "listeners": []}`,
		`{"version": 1, "listeners": [{"id": "i", "fencingToken": 1}]}`,
		`{"version": 1, "listeners": [{"listenerSet": "s", "id": "i", "fencingToken": 1, "validUntil": "soon"}]}`,
	} {
		if _, err := parseDocument([]byte(body), time.Now(), time.Now()); err == nil {
			t.Errorf("%q read as a document", body)
		}
	}
}

func TestEachDelayLiesBetweenHalfTheCeilingAndTheCeiling(t *testing.T) {
	b := DefaultBackoff
	rng := rand.New(rand.NewPCG(7, 7))
	for attempt := 1; attempt < 40; attempt++ {
		ceiling := 50 * time.Millisecond << min(attempt-1, 10)
		ceiling = min(ceiling, time.Second)
		if got := b.Ceiling(attempt); got != ceiling {
			t.Fatalf("ceiling of attempt %d: %v, want %v", attempt, got, ceiling)
		}
		if got := b.Delay(attempt, func() float64 { return 0 }); got != ceiling/2 {
			t.Errorf("shortest delay of attempt %d: %v", attempt, got)
		}
		if got := b.Delay(attempt, func() float64 { return 1 }); got != ceiling {
			t.Errorf("longest delay of attempt %d: %v", attempt, got)
		}
		for i := 0; i < 200; i++ {
			if d := b.Delay(attempt, rng.Float64); d < ceiling/2 || d > ceiling {
				t.Fatalf("delay %v of attempt %d outside [%v, %v]", d, attempt, ceiling/2, ceiling)
			}
		}
	}
}

func TestDelaysGrowToTheCapAndStayThere(t *testing.T) {
	b := DefaultBackoff
	want := []time.Duration{50, 100, 200, 400, 800, 1000, 1000, 1000, 1000}
	for i, w := range want {
		if got := b.Ceiling(i + 1); got != w*time.Millisecond {
			t.Errorf("ceiling of attempt %d: %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := b.Ceiling(10_000); got != time.Second {
		t.Errorf("no overflow however long the sidecar is gone: %v", got)
	}
	if got := b.Ceiling(0); got != 50*time.Millisecond {
		t.Errorf("attempt 0: %v", got)
	}
}

func TestDelaysAreSpreadSoClientsDoNotRetryInLockstep(t *testing.T) {
	lo, hi := time.Hour, time.Duration(0)
	seen := map[time.Duration]bool{}
	for i := 0; i < 500; i++ {
		d := DefaultBackoff.Delay(8, nil)
		lo, hi = min(lo, d), max(hi, d)
		seen[d.Round(time.Microsecond)] = true
	}
	if hi-lo < 300*time.Millisecond || len(seen) < 450 {
		t.Errorf("delays in [%v, %v], %d distinct", lo, hi, len(seen))
	}
}

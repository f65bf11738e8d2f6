package listeners

import (
	"math/rand/v2"
	"time"
)

// Backoff is jittered exponential backoff: attempt n (from 1) waits a random time in [c/2, c]
// with c = min(Cap, Base·2^(n-1)) ("equal jitter": never a burst of immediate retries, never two
// clients in lockstep).
type Backoff struct {
	Base time.Duration
	Cap  time.Duration
}

// DefaultBackoff is 50 ms doubling to 1 s.
var DefaultBackoff = Backoff{Base: 50 * time.Millisecond, Cap: time.Second}

// Ceiling is the longest wait of attempt n.
func (b Backoff) Ceiling(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	c := b.Base
	for i := 1; i < attempt && c < b.Cap; i++ {
		c *= 2
	}
	if c > b.Cap {
		c = b.Cap
	}
	return c
}

// Delay is the wait of attempt n, rand() in [0, 1] choosing where in [c/2, c]; nil rand is
// math/rand/v2's.
func (b Backoff) Delay(attempt int, rand func() float64) time.Duration {
	if rand == nil {
		rand = defaultRand
	}
	c := b.Ceiling(attempt)
	return c/2 + time.Duration(rand()*float64(c/2))
}

func defaultRand() float64 { return rand.Float64() }

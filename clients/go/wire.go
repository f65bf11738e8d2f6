package listeners

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DefaultURL is where the sidecar (`baton agent`) serves its document.
const DefaultURL = "http://127.0.0.1:8686"

// ListenerID names one listener: its ListenerSet and its id within the set.
type ListenerID struct {
	Set string
	ID  string
}

// String is "<set>/<id>".
func (l ListenerID) String() string { return l.Set + "/" + l.ID }

// Listener is one listener to run, as the sidecar lists it.
type Listener struct {
	ListenerID
	// Config is the listener's configuration; HasConfig says whether the sidecar sent one.
	Config    string
	HasConfig bool
	// FencingToken is passed to whatever the listener writes to, which refuses lower tokens.
	FencingToken int64
	// ValidUntil is the sidecar's validUntil (node wall clock, UTC); zero when it sent none.
	// The client stops the listener when it passes, counted on the monotonic clock.
	ValidUntil time.Time
}

// entry is a listed listener with its deadline on the monotonic clock.
type entry struct {
	Listener
	// deadline carries a monotonic reading (time.Now() plus the time left when the document
	// arrived), so a later step of the wall clock changes nothing; zero when there is none.
	deadline time.Time
}

func (e entry) expired(now time.Time) bool {
	return !e.deadline.IsZero() && !now.Before(e.deadline)
}

// document is one version of what the sidecar lists.
type document struct {
	version   uint64
	pod       string
	namespace string
	listeners []entry
}

// The agent's JSON (crates/baton-agent/src/sidecar.rs):
//
//	{"version": 7, "pod": "user-service-0-7d4a", "namespace": "default",
//	 "listeners": [{"listenerSet": "sxt", "id": "listener1", "config": "token…",
//	                "fencingToken": 4, "validUntil": "2026-01-10T10:00:04.500Z"}],
//	 "validUntil": "2026-01-10T10:00:04.500Z"}
type wireEntry struct {
	ListenerSet  *string `json:"listenerSet"`
	ID           *string `json:"id"`
	Config       *string `json:"config,omitempty"`
	FencingToken *int64  `json:"fencingToken"`
	ValidUntil   *string `json:"validUntil,omitempty"`
}

type wireDocument struct {
	Version   *uint64      `json:"version"`
	Pod       string       `json:"pod"`
	Namespace string       `json:"namespace"`
	Listeners *[]wireEntry `json:"listeners"`
}

// parseDocument reads the sidecar's document; validUntil becomes a deadline on the monotonic
// clock: the time left (validUntil minus wallNow) added to now.
func parseDocument(body []byte, now time.Time, wallNow time.Time) (*document, error) {
	var raw wireDocument
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("not the sidecar's document: %w", err)
	}
	if raw.Version == nil {
		return nil, errors.New("the document has no version")
	}
	if raw.Listeners == nil {
		return nil, errors.New("the document has no listeners")
	}
	doc := &document{version: *raw.Version, pod: raw.Pod, namespace: raw.Namespace}
	for _, w := range *raw.Listeners {
		if w.ListenerSet == nil || w.ID == nil || w.FencingToken == nil {
			return nil, errors.New("a listener entry lacks listenerSet, id or fencingToken")
		}
		e := entry{Listener: Listener{
			ListenerID:   ListenerID{Set: *w.ListenerSet, ID: *w.ID},
			FencingToken: *w.FencingToken,
		}}
		if w.Config != nil {
			e.Config, e.HasConfig = *w.Config, true
		}
		if w.ValidUntil != nil {
			t, err := time.Parse(time.RFC3339Nano, *w.ValidUntil)
			if err != nil {
				return nil, fmt.Errorf("validUntil of %s: %w", e.ListenerID, err)
			}
			e.ValidUntil = t.UTC()
			e.deadline = now.Add(t.Sub(wallNow))
		}
		doc.listeners = append(doc.listeners, e)
	}
	return doc, nil
}

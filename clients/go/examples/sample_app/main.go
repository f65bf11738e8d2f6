// The sample user-service on the Go client: clients/python/examples/sample_app.py's behaviour
// (the app config/samples runs), on the Go client.
//
// "Running a listener" is a log line ("start <set>/<id> token=<n>", "stop <set>/<id>"), written
// when it starts and when its Start returns (before the stop is acknowledged); a real service
// opens its connection there. Serves GET /healthz on $PORT (0: any free port, printed) with what
// runs. $BATON_AGENT_URL is the sidecar (default http://127.0.0.1:8686); $STOP_SECONDS (default
// 0) is how long closing a listener's connection takes; with $STOP_FAILS=1 the close then panics
// (the connection is gone all the same), as the conformance suite asks. On SIGTERM it follows the
// sidecar until everything is stopped and acknowledged, then exits.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	listeners "github.com/baton-dev/baton/clients/go"
)

var out sync.Mutex

// logLine writes one line to stdout in one write: lines from two goroutines never interleave.
func logLine(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func main() {
	stopSeconds := 0.0
	if v := os.Getenv("STOP_SECONDS"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "STOP_SECONDS=%q: %v\n", v, err)
			os.Exit(2)
		}
		stopSeconds = s
	}
	stopFails := os.Getenv("STOP_FAILS") == "1"
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	url := os.Getenv("BATON_AGENT_URL")
	if url == "" {
		url = listeners.DefaultURL
	}

	client := listeners.New(listeners.WithURL(url)) // drains on SIGTERM

	ln, err := net.Listen("tcp", "0.0.0.0:"+port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "serving /healthz: %v\n", err)
		os.Exit(1)
	}
	logLine("serving /healthz on port %d", ln.Addr().(*net.TCPAddr).Port)
	health := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type running struct {
			Listener     string `json:"listener"`
			FencingToken int64  `json:"fencingToken"`
			State        string `json:"state"`
		}
		body := struct {
			Sidecar bool      `json:"sidecar"`
			Running []running `json:"running"`
		}{Sidecar: client.SidecarReachable(), Running: []running{}}
		for _, r := range client.Running() {
			body.Running = append(body.Running, running{r.Listener.String(), r.FencingToken, string(r.State)})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})}
	go func() { _ = health.Serve(ln) }()

	err = client.Run(context.Background(), listeners.HandlerFunc(func(ctx context.Context, l listeners.Listener) {
		logLine("start %s token=%d", l, l.FencingToken)
		<-ctx.Done()                                                  // a real listener: connect with l.Config, write with l.FencingToken
		time.Sleep(time.Duration(stopSeconds * float64(time.Second))) // closing the connection
		logLine("stop %s", l)
		if stopFails {
			panic(fmt.Sprintf("closing %s failed", l))
		}
	}))
	_ = health.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
	logLine("every listener stopped; exiting")
}

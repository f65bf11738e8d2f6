package listeners

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lines is a process's output, line by line, each waited for at most a deadline.
type lines chan string

func (l lines) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-l:
		if !ok {
			t.Fatal("the app's output ended")
		}
		return line
	case <-time.After(10 * time.Second):
		t.Fatal("no line from the app in 10 s")
	}
	return ""
}

// TestTheSampleApp runs examples/sample_app as a process against the fake sidecar: the log lines
// the end-to-end tests read, /healthz, and SIGTERM.
func TestTheSampleAppLogsItsListenersAndExitsAfterTheSidecarEmptied(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sample app")
	}
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	bin := filepath.Join(t.TempDir(), "sample_app")
	if out, err := exec.Command(goCmd, "build", "-o", bin, "./examples/sample_app").CombinedOutput(); err != nil {
		t.Fatalf("building the sample app: %v\n%s", err, out)
	}
	f := newFakeSidecar(t, 0)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "BATON_AGENT_URL="+f.url, "PORT=0", "STOP_SECONDS=0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	out := make(lines, 100)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			out <- strings.TrimSpace(s.Text())
		}
		close(out)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	first := strings.Fields(out.next(t))
	if len(first) != 5 || strings.Join(first[:4], " ") != "serving /healthz on port" {
		t.Fatalf("first line %q", first)
	}
	port, _ := strconv.Atoi(first[4])
	f.publish(l1(3, 0), l2(7, 0))
	starts := []string{out.next(t), out.next(t)}
	sort.Strings(starts)
	if starts[0] != "start sxt/listener1 token=3" || starts[1] != "start sxt/listener2 token=7" {
		t.Fatalf("starts %q", starts)
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Sidecar bool `json:"sidecar"`
		Running []struct {
			Listener     string `json:"listener"`
			FencingToken int64  `json:"fencingToken"`
			State        string `json:"state"`
		} `json:"running"`
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !health.Sidecar || len(health.Running) != 2 || health.Running[0].Listener != A || health.Running[0].FencingToken != 3 ||
		health.Running[1].Listener != B || health.Running[1].FencingToken != 7 {
		t.Fatalf("/healthz %+v", health)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	one := f.publish(l2(7, 0)) // the sidecar stops them one by one
	if line := out.next(t); line != "stop sxt/listener1" {
		t.Fatalf("line %q", line)
	}
	until(t, "its acknowledgement", 5*time.Second, func() bool { return len(f.acksOf(one)) > 0 })
	select {
	case err := <-exited:
		t.Fatalf("exited (%v) while the sidecar still lists listener2", err)
	default:
	}
	empty := f.publish()
	for _, want := range []string{"stop sxt/listener2", "every listener stopped; exiting"} {
		if line := out.next(t); line != want {
			t.Fatalf("line %q, want %q", line, want)
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exited with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still running 5 s after its last line")
	}
	if len(f.acksOf(empty)) == 0 {
		t.Error("exited before acknowledging the empty document")
	}
}

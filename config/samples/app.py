"""The sample user-service: runs the listeners its `baton agent` sidecar assigns to this pod.

It follows the application's contract (docs/listeners.md, "The application's contract"):

* run exactly the listeners the sidecar lists, each with its fencing token;
* stop a listener the sidecar no longer lists, then acknowledge the version:
  POST /ack?version=<version> (the Lease is released only after that);
* stop a listener once its validUntil has passed, whether or not the sidecar still answers
  (a sidecar that died or is cut off renews nothing: after validUntil another pod may be given
  the listener);
* on SIGTERM keep following the sidecar (which then lists nothing) until everything is stopped
  and acknowledged, then exit.

"Running a listener" is a log line here (`start <set>/<id> token=<n>`, `stop <set>/<id>`); a real
service opens its connection there. Standard library only; serves GET /healthz on $PORT for the
readiness probe (PORT=0: any free port, printed).
"""
import datetime
import http.server
import json
import os
import signal
import sys
import threading
import time
import urllib.request

AGENT = os.environ.get("BATON_AGENT_URL", "http://127.0.0.1:8686")
PORT = int(os.environ.get("PORT", "8080"))
# How often validUntil is checked (seconds): well under the agent's safety margin.
TICK = 0.02

docs = {"doc": None}
changed = threading.Condition()
terminating = threading.Event()


_out = threading.Lock()


def log(message):
    # One write per line, under a lock: print() from two threads can interleave a line with
    # another's newline.
    with _out:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()


def valid_until(entry):
    """validUntil as epoch seconds; an entry without one (an older sidecar) is valid while listed."""
    v = entry.get("validUntil")
    if v is None:
        return float("inf")
    return datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


def follow_sidecar():
    """Long-poll the sidecar for each new version of the document."""
    version = 0
    while True:
        try:
            url = f"{AGENT}/listeners?wait={version}"
            with urllib.request.urlopen(url, timeout=40) as r:
                doc = json.load(r)
            with changed:
                docs["doc"] = doc
                changed.notify_all()
            version = doc["version"]
        except Exception:
            # Down or restarting: what it listed last stays valid only until validUntil.
            time.sleep(0.05)


def acknowledge(version):
    try:
        req = urllib.request.Request(f"{AGENT}/ack?version={version}", method="POST")
        urllib.request.urlopen(req, timeout=5).close()
        return True
    except Exception:
        return False


def serve_health():
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Health)
    log(f"serving /healthz on port {server.server_address[1]}")
    server.serve_forever()


def main():
    signal.signal(signal.SIGTERM, lambda *_: terminating.set())
    threading.Thread(target=serve_health, daemon=True).start()
    threading.Thread(target=follow_sidecar, daemon=True).start()
    running = {}  # "<set>/<id>" -> fencing token
    acked = 0
    while True:
        with changed:
            changed.wait(timeout=TICK)
            doc = docs["doc"]
        now = time.time()
        listed = {f"{e['listenerSet']}/{e['id']}": e for e in (doc or {}).get("listeners", [])}
        wanted = {k: e for k, e in listed.items() if valid_until(e) > now}
        for key in [k for k, t in running.items() if k not in wanted or wanted[k]["fencingToken"] != t]:
            log(f"stop {key}")
            del running[key]
        for key, entry in wanted.items():
            if key not in running:
                running[key] = entry["fencingToken"]
                log(f"start {key} token={entry['fencingToken']}")
        # Everything this version no longer lists has stopped: say so.
        if doc is not None and doc["version"] > acked and all(k in listed for k in running):
            if acknowledge(doc["version"]):
                acked = doc["version"]
        if terminating.is_set() and not running and not wanted:
            if not listed and doc is not None and acked >= doc["version"] or listed:
                log("every listener stopped; exiting")
                return


if __name__ == "__main__":
    main()

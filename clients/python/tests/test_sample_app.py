"""examples/sample_app.py as a process, against the fake sidecar: the log lines the end-to-end
tests read, /healthz, and SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from fake_sidecar import FakeSidecar, Listed

APP = Path(__file__).resolve().parent.parent / "examples" / "sample_app.py"


class Lines:
    """The process's output lines, each waited for at most ``timeout`` seconds."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._lines.put(line.strip())

    def next(self, timeout: float = 5.0) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the app in {timeout} s") from None


def test_the_sample_app_logs_its_listeners_and_exits_after_the_sidecar_emptied(sidecar: FakeSidecar) -> None:
    env = {**os.environ, "BATON_AGENT_URL": sidecar.url, "PORT": "0"}
    env.pop("PYTHONPATH", None)  # it finds the package beside it, as from a checkout
    proc = subprocess.Popen([sys.executable, "-u", str(APP)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        lines = Lines(proc)
        first = lines.next().split()
        assert first[:4] == ["serving", "/healthz", "on", "port"], first
        port = int(first[4])
        sidecar.publish(Listed("sxt", "listener1", 3), Listed("sxt", "listener2", 7))
        starts = sorted(lines.next() for _ in range(2))
        assert starts == ["start sxt/listener1 token=3", "start sxt/listener2 token=7"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            health = json.load(r)
        assert health["sidecar"] is True
        assert {(e["listener"], e["fencingToken"]) for e in health["running"]} == {
            ("sxt/listener1", 3), ("sxt/listener2", 7)}
        proc.send_signal(signal.SIGTERM)
        one = sidecar.publish(Listed("sxt", "listener2", 7))  # the sidecar stops them one by one
        assert lines.next() == "stop sxt/listener1"
        sidecar.wait_for("its acknowledgement", lambda: sidecar.acks_of(one))
        assert proc.poll() is None, "exited while the sidecar still lists listener2"
        empty = sidecar.publish()
        assert lines.next() == "stop sxt/listener2"
        assert lines.next() == "every listener stopped; exiting"
        assert proc.wait(5) == 0
        assert sidecar.acks_of(empty)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""The sample app as config/samples' pods run it: kustomization.yaml (beside pyproject.toml) puts
the sample app and every module of the client in one ConfigMap, config/samples/rollout.yaml
mounts each key at its path, and the app laid out that way imports the client from beside it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from fake_sidecar import FakeSidecar, Listed
from test_sample_app import Lines

CLIENT = Path(__file__).resolve().parent.parent
ROLLOUT = CLIENT.parent.parent / "config" / "samples" / "rollout.yaml"
MODULES = sorted(p.name for p in (CLIENT / "src" / "baton_listeners").glob("*.py"))


def mounted_items() -> dict[str, str]:
    """ConfigMap key -> path under the mount, from the Rollout's `app` volume."""
    return dict(re.findall(r"\{key: (\S+), path: (\S+)\}", ROLLOUT.read_text()))


def test_the_configmap_holds_every_module_and_the_rollout_mounts_each() -> None:
    text = (CLIENT / "kustomization.yaml").read_text()
    files = sorted(re.findall(r"^\s+- (\S+\.py)$", text, re.M))
    assert files == sorted(["examples/sample_app.py"] + [f"src/baton_listeners/{m}" for m in MODULES])
    assert mounted_items() == {"sample_app.py": "sample_app.py", **{m: f"baton_listeners/{m}" for m in MODULES}}


def test_the_sample_app_runs_as_mounted(sidecar: FakeSidecar, tmp_path: Path) -> None:
    sources = {"sample_app.py": CLIENT / "examples" / "sample_app.py"}
    sources.update({m: CLIENT / "src" / "baton_listeners" / m for m in MODULES})
    for key, path in mounted_items().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[key], tmp_path / path)
    env = {**os.environ, "BATON_AGENT_URL": sidecar.url, "PORT": "0"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([sys.executable, "-u", str(tmp_path / "sample_app.py")], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = Lines(proc)
        assert lines.next().startswith("serving /healthz on port "), "the app did not start"
        sidecar.publish(Listed("user-service-listeners", "listener1", 2))
        assert lines.next() == "start user-service-listeners/listener1 token=2"
        proc.send_signal(signal.SIGTERM)
        sidecar.publish()
        assert lines.next() == "stop user-service-listeners/listener1"
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

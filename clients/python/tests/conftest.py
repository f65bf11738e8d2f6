"""What every test here shares: a fake sidecar, killed at the end if the test left it running."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_sidecar import FakeSidecar


@pytest.fixture
def sidecar() -> Iterator[FakeSidecar]:
    s = FakeSidecar()
    yield s
    if not s.dead:
        s.kill()

"""The UI tests' clean-up reaches every process a component started, even one in a process group of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.ui.conftest import _session_members, _signal_group

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the session from /proc")


def test_a_child_in_its_own_process_group_is_signalled_with_its_session() -> None:
    # `set -m` gives the background sleep a process group of its own, as Airflow does for its task runners.
    with subprocess.Popen(
        ["bash", "-c", "set -m; sleep 60 & echo $!; wait"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    ) as parent:
        child = int(parent.stdout.readline())
        assert os.getpgid(child) != parent.pid
        assert child in _session_members(parent.pid)
        _signal_group(parent, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while child in _session_members(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child not in _session_members(parent.pid)

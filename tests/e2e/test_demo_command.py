"""The README's main command, run as a user would: its own local broker, worker and sink, and a
report checked against the generator's ground truth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local_kafka import LocalKafka

pytestmark = pytest.mark.e2e


def test_demo_command_reports_ground_truth_and_stops_its_broker(
    tmp_path: Path, kafka_lib: Path
) -> None:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "lib").symlink_to(kafka_lib)  # reuse the resolved jars
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSFUNNEL_")}
    env["SMSFUNNEL_STATE_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "smsfunnel", "demo", "--messages", "1500", "--seed", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Report equals the generator's ground truth" in result.stdout
    assert "demo-seed3" in result.stdout and "end-to-end events/s" in result.stdout
    assert LocalKafka(tmp_path / "kafka").running() is None

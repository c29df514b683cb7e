"""A worker told to stop (SIGTERM) while the broker is away exits within its shutdown timeout
instead of hanging on a flush or a commit that cannot complete. Exiting without them is a
crash as far as Kafka is concerned, which the at-least-once design already absorbs (the next
worker replays from the group's last commit)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from infra.local_kafka import LocalKafka
from infra.topics import provision_topics
from smsfunnel.processes import settings_env, spawn_service, stop_service
from tests.e2e.conftest import pipeline_settings

pytestmark = pytest.mark.e2e


def wait_for_stable_group(bootstrap: str, group: str, worker: subprocess.Popen[bytes]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + 120
    while True:
        assert worker.poll() is None, f"worker died ({worker.returncode})"
        assert time.monotonic() < deadline, "the worker never joined its group"
        try:
            described = admin.describe_consumer_groups([group])[group].result(timeout=5)
            if described.state == ConsumerGroupState.STABLE and described.members:
                return
        except Exception:  # noqa: BLE001 - not yet known to the coordinator
            pass
        time.sleep(0.5)


def test_worker_exits_on_sigterm_while_the_broker_is_away(tmp_path: Path, kafka_lib: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka", heap="384m", lib=kafka_lib)
    bootstrap = broker.start().address
    settings = pipeline_settings(tmp_path / "state", bootstrap, worker_shutdown_timeout=10)
    provision_topics(bootstrap, settings.partitions, settings.worker_id)
    worker = spawn_service("worker", settings_env(settings, bootstrap), tmp_path / "logs")
    try:
        wait_for_stable_group(bootstrap, settings.worker_id, worker)
        broker.stop()
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            worker.wait(timeout=settings.worker_shutdown_timeout + 30)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"worker still running {time.monotonic() - started:.0f} s after SIGTERM "
                f"with the broker away (shutdown timeout {settings.worker_shutdown_timeout} s)"
            )
    finally:
        stop_service(worker)
        broker.wipe()

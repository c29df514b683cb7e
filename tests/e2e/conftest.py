"""Real parts: a throwaway Apache Kafka broker (KRaft, from the project's jars), the Faust
worker and the ClickHouse sink as separate processes, and the embedded ClickHouse engine.
Nothing is mocked."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest

from infra.local_kafka import LocalKafka, free_port
from infra.topics import provision_topics
from sinks.query_client import SinkQuery
from smsfunnel.drain import pipeline_stages, wait_until_drained
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.settings import PROJECT_ROOT, Settings

SHARED_KAFKA_LIB = PROJECT_ROOT / ".smsfunnel" / "kafka" / "lib"


@pytest.fixture(scope="session")
def kafka_lib() -> Path:
    LocalKafka(PROJECT_ROOT / ".smsfunnel" / "kafka").install()
    return SHARED_KAFKA_LIB


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory, kafka_lib: Path) -> Iterator[str]:
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), heap="512m", lib=kafka_lib)
    address = broker.start().address
    yield address
    broker.stop()


@dataclass
class Pipeline:
    settings: Settings
    bootstrap: str
    worker: Popen[bytes]
    sink: Popen[bytes]
    query: SinkQuery
    logs: Path

    def restart_worker(self) -> None:
        stop_service(self.worker)
        env = settings_env(self.settings, self.bootstrap)
        self.worker = spawn_service("worker", env, self.logs)

    def kill_worker(self) -> None:
        self.worker.kill()  # SIGKILL: no flush, no commit, no leaving the group
        self.worker.wait()

    def alive(self) -> None:
        for name, proc in (("worker", self.worker), ("sink", self.sink)):
            assert proc.poll() is None, f"{name} died ({proc.returncode}); logs in {self.logs}"

    def drain(self, timeout: float = 180.0) -> None:
        def check(group: str, lag: int) -> None:
            self.alive()

        wait_until_drained(
            self.bootstrap,
            pipeline_stages(self.settings.worker_id, self.settings.sink_group),
            timeout=timeout,
            on_progress=check,
        )


def wait_http(url: str, timeout: float, pipeline_check) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        pipeline_check()
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.2)


@pytest.fixture(scope="session")
def pipeline(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    state = tmp_path_factory.mktemp("state")
    settings = Settings(
        state_dir=state,
        kafka_bootstrap=kafka,
        worker_metrics_port=free_port(),
        sink_http_port=free_port(),
        sink_batch_seconds=0.5,
    )
    provision_topics(kafka, settings.partitions, settings.worker_id)
    env = settings_env(settings, kafka)
    logs = state / "logs"
    worker = spawn_service("worker", env, logs)
    sink = spawn_service("sink", env, logs)
    p = Pipeline(
        settings,
        kafka,
        worker,
        sink,
        SinkQuery(f"http://127.0.0.1:{settings.sink_http_port}"),
        logs,
    )
    try:
        wait_http(f"http://127.0.0.1:{settings.sink_http_port}/health", 60, p.alive)
        yield p
    finally:
        stop_service(p.worker)  # the current processes: a test may have restarted them
        stop_service(p.sink)

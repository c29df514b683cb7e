"""The worker's run loop (stream_processors/worker_app.run_worker) starts its app over when
Quix stops it for a partition whose leader is not settled (CI, 2026-12-03: the worker exited 1
with NOT_LEADER_FOR_PARTITION on a topic provisioned moments before) or for a checkpoint commit
the group refused or had no coordinator for (the chaos test: "Waiting for coordinator" after a
broker restart), and still exits on anything else. The apps are stand-ins: what is tested is
the loop's decision; the chaos test runs the real thing."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from quixstreams.checkpointing.exceptions import CheckpointConsumerCommitError
from quixstreams.exceptions import PartitionAssignmentError

from smsfunnel.settings import Settings
from stream_processors import metrics, worker_app


def assignment_error(code: int) -> PartitionAssignmentError:
    try:
        try:
            raise KafkaException(KafkaError(code))
        except KafkaException as cause:
            raise PartitionAssignmentError("Error during partition assignment") from cause
    except PartitionAssignmentError as exc:
        return exc


class App:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.ran = False

    def run(self) -> None:
        self.ran = True
        if self.error is not None:
            raise self.error


def run_with(monkeypatch: pytest.MonkeyPatch, apps: list[App]) -> list[App]:
    started: list[App] = []

    def start_app(_settings: Any) -> App:
        started.append(apps[len(started)])
        return started[-1]

    monkeypatch.setattr(worker_app, "start_app", start_app)
    monkeypatch.setattr(worker_app.time, "sleep", lambda _s: None)
    monkeypatch.setattr("prometheus_client.start_http_server", lambda *a, **k: None)
    worker_app.run_worker(Settings())
    return started


def rejoins(reason: str) -> float:
    return metrics.WORKER_REJOINS.labels(reason)._value.get()  # noqa: SLF001


@pytest.mark.parametrize(
    "code", [KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE]
)
def test_an_assignment_meeting_a_partition_without_leader_starts_the_app_over(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    before = rejoins("assignment_failed")
    apps = [App(assignment_error(code)), App(assignment_error(code)), App(None)]
    started = run_with(monkeypatch, apps)
    assert started == apps and all(a.ran for a in apps)
    assert rejoins("assignment_failed") == before + 2


def test_any_other_assignment_failure_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    error = assignment_error(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    apps = [App(error), App(None)]
    with pytest.raises(PartitionAssignmentError):
        run_with(monkeypatch, apps)
    assert not apps[1].ran


@pytest.mark.parametrize(
    "code",
    [KafkaError.UNKNOWN_MEMBER_ID, KafkaError._WAIT_COORD, KafkaError.NOT_COORDINATOR],  # noqa: SLF001
)
def test_a_refused_checkpoint_commit_starts_the_app_over(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    before = rejoins("commit_refused")
    apps = [App(CheckpointConsumerCommitError(KafkaError(code))), App(None)]
    assert run_with(monkeypatch, apps) == apps and apps[1].ran
    assert rejoins("commit_refused") == before + 1


def test_a_commit_failing_otherwise_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    error = CheckpointConsumerCommitError(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
    apps = [App(error), App(None)]
    with pytest.raises(CheckpointConsumerCommitError):
        run_with(monkeypatch, apps)
    assert not apps[1].ran

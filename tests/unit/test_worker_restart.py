"""The worker's run loop (stream_processors/worker_app.run_worker) starts its app over when
Quix stops it for a partition whose leader is not settled (CI, 2026-12-03: the worker exited 1
with NOT_LEADER_FOR_PARTITION on a topic provisioned moments before) or for a checkpoint commit
the group refused or had no coordinator for (the chaos test: "Waiting for coordinator" after a
broker restart), or for a partition without leader while restoring state, and still exits on
anything else; its consumer rides out a poll's transient partition errors. The apps are
stand-ins: what is tested is the loop's decision; the chaos test runs the real thing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from quixstreams.checkpointing.exceptions import CheckpointConsumerCommitError
from quixstreams.exceptions import PartitionAssignmentError
from quixstreams.kafka.exceptions import KafkaConsumerException
from quixstreams.models.topics.exceptions import CreateTopicFailure, TopicNotFoundError

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


def committed_offsets_error(code: int) -> PartitionAssignmentError:
    """What Quix raises when the group's committed offset of a partition comes back with an
    error: a RuntimeError naming the KafkaError, inside the assignment error."""
    try:
        try:
            raise RuntimeError(
                f'Failed to get committed offsets for "t[0]" from the broker: {KafkaError(code)!s}'
            )
        except RuntimeError as cause:
            raise PartitionAssignmentError("Error during partition assignment") from cause
    except PartitionAssignmentError as exc:
        return exc


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
    ],
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


def consumer_errors(code: str) -> float:
    return metrics.WORKER_CONSUMER_ERRORS.labels(code)._value.get()  # noqa: SLF001


def test_a_partition_without_leader_during_recovery_starts_the_app_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = rejoins("consumer_error")
    error = KafkaConsumerException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    apps = [App(error), App(None)]
    assert run_with(monkeypatch, apps) == apps and apps[1].ran
    assert rejoins("consumer_error") == before + 1


def test_any_other_consumer_error_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    apps = [App(KafkaConsumerException(KafkaError(KafkaError.OFFSET_OUT_OF_RANGE))), App(None)]
    with pytest.raises(KafkaConsumerException):
        run_with(monkeypatch, apps)
    assert not apps[1].ran


@pytest.mark.parametrize(
    ("code", "suppressed"),
    [
        (KafkaError.NOT_LEADER_FOR_PARTITION, True),
        (KafkaError._TRANSPORT, True),  # noqa: SLF001
        (KafkaError.OFFSET_OUT_OF_RANGE, False),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, False),
    ],
)
def test_the_consumer_rides_out_only_transient_partition_errors(
    code: int, suppressed: bool
) -> None:
    name = KafkaError(code).name()
    before = consumer_errors(name)
    exc = KafkaConsumerException(KafkaError(code))
    assert worker_app.ride_out_transient(exc, None, logging.getLogger("test")) is suppressed
    assert consumer_errors(name) == before + (1 if suppressed else 0)
    # anything that is not a Kafka error is never suppressed
    assert not worker_app.ride_out_transient(ValueError("x"), None, logging.getLogger("test"))


@pytest.mark.parametrize(
    ("code", "restarts"),
    [
        (KafkaError.COORDINATOR_LOAD_IN_PROGRESS, True),
        (KafkaError._WAIT_COORD, True),  # noqa: SLF001
        (KafkaError.GROUP_AUTHORIZATION_FAILED, False),
    ],
)
def test_a_committed_offset_error_restarts_only_while_the_coordinator_settles(
    monkeypatch: pytest.MonkeyPatch, code: int, restarts: bool
) -> None:
    apps = [App(committed_offsets_error(code)), App(None)]
    if restarts:
        assert run_with(monkeypatch, apps) == apps and apps[1].ran
    else:
        with pytest.raises(PartitionAssignmentError):
            run_with(monkeypatch, apps)
        assert not apps[1].ran


@pytest.mark.parametrize(
    "error",
    [
        TopicNotFoundError('Topic "changelog__x" not found on the broker'),
        CreateTopicFailure("All brokers are currently fenced"),
    ],
)
def test_a_start_that_meets_a_broker_coming_or_going_is_tried_again(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """CI, stop 18: the broker stopped right after Quix created a changelog topic, Quix's
    read-back did not find it (TopicNotFoundError) and the worker exited 1."""
    built: list[object] = []

    def create_app(_settings: Any) -> object:
        built.append(object())
        if len(built) == 1:
            raise error
        return built[-1]

    monkeypatch.setattr(worker_app, "create_app", create_app)
    monkeypatch.setattr(worker_app, "wait_for_changelogs", lambda *_a, **_k: None)
    monkeypatch.setattr(worker_app.time, "sleep", lambda _s: None)
    assert worker_app.start_app(Settings(kafka_bootstrap="127.0.0.1:1")) is built[1]


def test_a_start_that_keeps_failing_gives_up_after_the_startup_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter(range(0, 10_000, 30))
    monkeypatch.setattr(worker_app.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(worker_app.time, "sleep", lambda _s: None)

    def create_app(_settings: Any) -> object:
        raise TopicNotFoundError("gone")

    monkeypatch.setattr(worker_app, "create_app", create_app)
    with pytest.raises(TopicNotFoundError):
        worker_app.start_app(Settings(kafka_bootstrap="127.0.0.1:1"))

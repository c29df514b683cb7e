"""Seeded chaos: a campaign played through a real broker while the join worker and the sink
are SIGKILLed at random points and restarted, a second worker joins and later dies (two
rebalances), and the broker is restarted gracefully once and SIGKILLed once. Afterwards every
message's funnel row, the campaign totals and every conversion's attribution credits equal
ground truth computed offline from the events (tests/ground_truth.py).

Each seed fixes the campaign, the order of the faults and where each one strikes (the share of
its chunk of events already sent, and a delay after it); the run is reproducible from it, up
to the timing of the processes themselves. In the default run with seeds 1, 2 and 3; others:
SMSFUNNEL_CHAOS_SEEDS=4,5,6 pytest -m chaos tests/e2e/test_chaos.py.

The test is also the processes' supervisor: a service that exits on its own is restarted (as
systemd or Kubernetes would) and named in the failure message, since a fault that only a
restart hides is still a fault.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest

from infra.local_kafka import LocalKafka
from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from smsfunnel.drain import LagProbe, pipeline_stages
from smsfunnel.processes import settings_env, spawn_service, stop_service
from tests.e2e.conftest import (
    Pipeline,
    assert_after_window_conversions_are_late,
    assert_campaign_totals,
    assert_credits_match_ground_truth,
    assert_rows_match_ground_truth,
    pipeline_settings,
    second_worker_settings,
    start_pipeline,
    stop_pipeline,
    wait_http,
)
from tests.ground_truth import expected_attribution

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

SEEDS = [int(s) for s in os.environ.get("SMSFUNNEL_CHAOS_SEEDS", "1,2,3").split(",")]
MESSAGES = 600
FAULTS = (
    "kill_worker",
    "kill_sink",
    "second_worker_joins",
    "second_worker_dies",
    "restart_broker",
    "kill_broker",
)


def chaos_plan(seed: int) -> list[tuple[str, float, float]]:
    """The faults in a seeded order (a second worker joins before it dies), each with the share
    of its chunk of events sent before it strikes and the delay (s) after that share went out:
    the fault hits while those events are in flight through the producer, broker and worker."""
    rng = random.Random(seed)
    faults = list(FAULTS)
    rng.shuffle(faults)
    joins, dies = faults.index("second_worker_joins"), faults.index("second_worker_dies")
    if dies < joins:
        faults[joins], faults[dies] = faults[dies], faults[joins]
    return [(fault, rng.uniform(0.2, 0.8), rng.uniform(0.0, 1.5)) for fault in faults]


@dataclass
class Chaos:
    broker: LocalKafka
    pipeline: Pipeline
    second_env: dict[str, str]
    second: Popen[bytes] | None = None
    unexpected_exits: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:.0f}s {what}")

    @property
    def worker_topics(self) -> list[str]:
        return pipeline_stages(self.pipeline.settings.worker_id, "")[0][1]

    def supervise(self) -> None:
        """Restart the services that exited on their own, and remember that they did."""
        p = self.pipeline
        if p.worker.poll() is not None:
            self.unexpected_exits.append(f"worker exited {p.worker.returncode}")
            p.restart_worker()
        if p.sink.poll() is not None:
            self.unexpected_exits.append(f"sink exited {p.sink.returncode}")
            p.restart_sink()
        if self.second is not None and self.second.poll() is not None:
            self.unexpected_exits.append(f"second worker exited {self.second.returncode}")
            self.second = None

    def wait_for_progress(self, timeout: float = 90.0) -> None:
        """Until the worker's group has committed past some of its backlog (or has none), so
        that the next fault strikes a pipeline that came back from the last one. Past the
        deadline the next fault strikes anyway; the final drain is what must succeed."""
        deadline = time.monotonic() + timeout
        group = self.pipeline.settings.worker_id
        with LagProbe(self.pipeline.bootstrap) as probe:
            start = left = probe.lag(group, self.worker_topics)
            while left and left >= start and time.monotonic() < deadline:
                self.supervise()
                time.sleep(0.2)
                left = probe.lag(group, self.worker_topics)
        self.note(f"backlog {start} -> {left}")

    def strike(self, fault: str) -> None:
        p = self.pipeline
        self.note(fault)
        if fault == "kill_worker":
            p.kill_worker()
            p.restart_worker()
        elif fault == "kill_sink":
            p.kill_sink()
            p.restart_sink()
        elif fault == "second_worker_joins":
            self.second = spawn_service("worker", self.second_env, p.logs, "worker-2")
        elif fault == "second_worker_dies":
            if self.second is not None:
                self.second.send_signal(signal.SIGKILL)
                self.second.wait()
                self.second = None
        elif fault == "restart_broker":
            self.broker.stop()
            assert self.broker.start().address == p.bootstrap
        elif fault == "kill_broker":
            self.broker.kill()
            assert self.broker.start().address == p.bootstrap
        else:
            raise ValueError(fault)


@pytest.fixture
def chaos(tmp_path: Path, kafka_lib: Path) -> Iterator[Chaos]:
    broker = LocalKafka(tmp_path / "kafka", heap="512m", lib=kafka_lib)
    bootstrap = broker.start().address
    settings = pipeline_settings(tmp_path / "state", bootstrap)
    second = second_worker_settings(settings, tmp_path / "state-2")
    pipeline = start_pipeline(settings, bootstrap)
    c = Chaos(broker, pipeline, settings_env(second, bootstrap))
    try:
        yield c
    finally:
        if c.second is not None:
            stop_service(c.second)
        stop_pipeline(pipeline)
        broker.wipe()


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_ends_equal_to_ground_truth(chaos: Chaos, seed: int) -> None:
    account = f"chaos-{seed}"
    events = generate_campaign(MESSAGES, seed=seed, account=account, duplicate_rate=0.1).events
    plan = chaos_plan(seed)
    # The events go in as many chunks as there are faults; each fault strikes while its chunk
    # is part sent, and the next chunk waits until the worker has made progress again.
    chunks = [events[i :: len(plan)] for i in range(len(plan))]
    producer = EventProducer(chaos.pipeline.bootstrap)
    for chunk, (fault, share, delay) in zip(chunks, plan, strict=True):
        cut = int(len(chunk) * share)
        producer.send_many(chunk[:cut])
        time.sleep(delay)  # where the fault strikes, not a wait for a result
        chaos.strike(fault)
        producer.send_many(chunk[cut:])
        chaos.supervise()
        chaos.wait_for_progress()
    producer.close(timeout=180)

    chaos.note("drain")
    chaos.pipeline.drain(timeout=300, check=chaos.supervise)
    chaos.note("drained")
    story = f"seed {seed}: {' / '.join(chaos.log)}"
    print(story)  # shown with a failure
    p = chaos.pipeline
    wait_http(f"http://127.0.0.1:{p.settings.sink_http_port}/health", 60, chaos.supervise)
    truth = assert_rows_match_ground_truth(chaos.pipeline, account, events, MESSAGES)
    assert_campaign_totals(chaos.pipeline, account, truth)
    assert_after_window_conversions_are_late(chaos.pipeline, account, events)
    _, attribution = expected_attribution(events)
    assert_credits_match_ground_truth(chaos.pipeline, account, attribution)
    assert chaos.unexpected_exits == [], f"{story}; exits: {chaos.unexpected_exits}"

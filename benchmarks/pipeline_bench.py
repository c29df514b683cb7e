"""Benchmark (not a test): the pipeline's catch-up speed against the machine's limit, one run.

Preloads a generated campaign (the demo's mix: sends, receipts, clicks, landings, engagements,
conversions, provider receipts, inbound replies, with retried duplicates) onto a throwaway
broker, then measures, each scenario on a fresh broker with the same events:

  limit      a bare confluent-kafka batch consumer of the worker's input topics, and the
             engine's no-op app (Quix Streams, `update` that does nothing) on the same topics
  worker     the worker alone (sink stopped) catching up, with 1 and 2 worker processes
  sink       the sink alone, on the rows the 1-worker run wrote
  e2e        worker(s) and sink started together, until everything is committed downstream
  latency    event time -> queryable at 1,000 and 5,000 input events/s (latency_probe.py):
             worker and sink on an empty broker, the events produced at that pace

Per run: events/s and its ratio to the bare consumer of the *same* run, CPU seconds per
million input events and peak RSS of each process (from /proc), records the worker produced
per input event, and the worker's state on disk per message. Timing starts when the group
first moves (startup and rebalance are reported apart) and ends when its committed offsets
reach the log ends (smsfunnel.drain: the same condition the demo and the tests wait on).

    PYTHONPATH=. .venv/bin/python benchmarks/pipeline_bench.py --messages 20000 \
        [--json bench.json] [--markdown bench.md] [--latency-seconds 30] \
        [--only limit,worker1,sink,e2e1,worker2,e2e2,latency1000,latency5000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from benchmarks import latency_probe
from benchmarks.latency_probe import Latency
from infra.local_kafka import LocalKafka, free_port
from infra.topics import provision_topics
from producers.kafka_producer import EventProducer
from producers.workload import Workload, generate_campaign
from schemas.topics import (
    ATTRIBUTION_INPUTS,
    FUNNEL_ROWS,
    JOIN_INPUTS,
    RESOLVER_INPUTS,
    SINK_INPUTS,
)
from sinks.query_client import SinkQuery
from smsfunnel.drain import LagProbe
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.settings import PROJECT_ROOT, Settings

LIB = PROJECT_ROOT / ".smsfunnel" / "kafka" / "lib"
WORKER_INPUTS = [s.name for s in (*JOIN_INPUTS, *RESOLVER_INPUTS, *ATTRIBUTION_INPUTS)]
SINK_TOPICS = [s.name for s in SINK_INPUTS]
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessUse:
    cpu_seconds: float
    peak_rss_mib: float


@dataclass
class Run:
    name: str
    records: int  # input records the timed stage consumed
    seconds: float  # from the group's first progress to fully committed
    startup_seconds: float  # from spawn to the group's first progress
    processes: dict[str, ProcessUse] = field(default_factory=dict)
    produced_per_input: float | None = None
    state_bytes_per_message: float | None = None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def proc_use(pid: int) -> ProcessUse:
    """CPU (user + system) and peak RSS of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return ProcessUse(cpu_seconds=cpu, peak_rss_mib=hwm / 1024)


def end_offsets(bootstrap: str, topics: list[str]) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-ends", "log_level": 3})
    try:
        meta = c.list_topics(timeout=10)
        total = 0
        for t in topics:
            for p in meta.topics[t].partitions:
                low, high = c.get_watermark_offsets(TopicPartition(t, p), timeout=10)
                total += high - low
        return total
    finally:
        c.close()


def bare_consume(bootstrap: str, topics: list[str], expected: int) -> Run:
    """The limit: read every record of `topics` in batches, doing nothing with them."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-bare-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    c.subscribe(topics)
    seen, started, t0 = 0, time.monotonic(), None
    try:
        while seen < expected:
            batch = c.consume(num_messages=10_000, timeout=1.0)
            if batch and t0 is None:
                t0 = time.monotonic()
            seen += sum(1 for m in batch if m.error() is None)
            if time.monotonic() - started > 300:
                raise TimeoutError(f"bare consumer read {seen} of {expected}")
        done = time.monotonic()
    finally:
        c.close()
    t0 = t0 or started
    return Run("bare consume", seen, done - t0, t0 - started)


def outputs_appeared(topics: list[str]) -> Callable[[LagProbe], bool]:
    """A stage has started work when its first output is on Kafka (its first commit comes a
    commit interval later, so timing from it would flatter the rate)."""

    def check(probe: LagProbe) -> bool:
        meta = probe.consumer.list_topics(timeout=10)
        return any(
            probe.consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1] > 0
            for t in topics
            for p in meta.topics[t].partitions
        )

    return check


def http_ready(url: str) -> Callable[[LagProbe], bool]:
    def check(_: LagProbe) -> bool:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return True
        except OSError:
            return False

    return check


def wait_committed(
    bootstrap: str,
    group: str,
    topics: list[str],
    procs: dict[str, subprocess.Popen[bytes]],
    timeout: float,
    samples: dict[str, ProcessUse],
    started: Callable[[LagProbe], bool],
) -> tuple[float, float]:
    """(startup, catch-up) seconds: until `started` holds, then until `group` has committed
    the log ends of `topics`. CPU and RSS are sampled at the end, processes alive."""
    spawned = time.monotonic()
    first: float | None = None
    with LagProbe(bootstrap) as probe:
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}")
            now = time.monotonic()
            if first is None and started(probe):
                first = now
            if first is not None and probe.lag(group, topics) == 0:
                now = time.monotonic()
                for name, proc in procs.items():
                    samples[name] = proc_use(proc.pid)
                return first - spawned, now - first
            if now - spawned > timeout:
                raise TimeoutError(f"{group}: not caught up after {timeout:.0f} s")
            time.sleep(0.05)


class Bench:
    def __init__(self, root: Path, workload: Workload, partitions: int) -> None:
        self.root = root
        self.workload = workload
        self.partitions = partitions
        self.broker: LocalKafka | None = None
        self.bootstrap = ""
        self.index = 0

    def fresh(self, preload: bool = True) -> Settings:
        """A new broker (with the preloaded events, unless not), new state, a new ClickHouse
        store."""
        if self.broker is not None:
            self.broker.stop()
        self.index += 1
        run = self.root / f"run{self.index}"
        self.broker = LocalKafka(run / "kafka", heap="768m", lib=LIB)
        self.bootstrap = self.broker.start().address
        settings = Settings(
            state_dir=run / "state",
            kafka_bootstrap=self.bootstrap,
            partitions=self.partitions,
            worker_metrics_port=free_port(),
            sink_http_port=free_port(),
        )
        provision_topics(self.bootstrap, settings.partitions, settings.worker_id)
        if not preload:
            return settings
        producer = EventProducer(self.bootstrap)
        for event in self.workload.events:
            producer.send(event)
        producer.close()
        return settings

    def spawn(self, settings: Settings, name: str, copy: int = 0) -> subprocess.Popen[bytes]:
        s = settings
        if copy:  # a second worker process: same group, its own state and metrics port
            s = settings.model_copy(
                update={
                    "worker_metrics_port": free_port(),
                    "state_dir": settings.state_dir / f"copy{copy}",
                    "clickhouse_dsn": settings.effective_clickhouse_dsn,
                }
            )
        return spawn_service(
            name, settings_env(s, self.bootstrap), self.root / "logs", f"{name}{copy}-{self.index}"
        )

    def stage(
        self,
        label: str,
        settings: Settings,
        services: list[tuple[str, int]],
        group: str,
        topics: list[str],
        records: int,
        timeout: float,
        started: Callable[[LagProbe], bool],
    ) -> tuple[Run, dict[str, subprocess.Popen[bytes]]]:
        procs = {f"{n}{c or ''}": self.spawn(settings, n, c) for n, c in services}
        samples: dict[str, ProcessUse] = {}
        try:
            startup, seconds = wait_committed(
                self.bootstrap, group, topics, procs, timeout, samples, started
            )
        except BaseException:
            for p in procs.values():
                stop_service(p)
            raise
        return Run(label, records, seconds, startup, samples), procs

    def engine_noop(self, records: int, timeout: float) -> Run:
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        group = f"bench-noop-{self.index}"
        cmd = [sys.executable, str(Path(__file__).with_name("engine_noop.py"))]
        cmd += [self.bootstrap, group, str(self.root / f"noop{self.index}"), *WORKER_INPUTS]
        log = open(self.root / "logs" / f"noop-{self.index}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        samples: dict[str, ProcessUse] = {}
        try:
            startup, seconds = wait_committed(
                self.bootstrap, group, WORKER_INPUTS, {"noop": proc}, timeout, samples,
                lambda probe: probe.lag(group, WORKER_INPUTS) < records,
            )  # fmt: skip
        finally:
            stop_service(proc)
            log.close()
        return Run("engine no-op (Quix Streams)", records, seconds, startup, samples)

    def latency(self, rate: int, seconds: float) -> Latency:
        """Event time -> queryable at `rate` events/s: worker and sink on an empty broker,
        the campaign's events produced at that pace with probes among them."""
        settings = self.fresh(preload=False)
        procs = {n: self.spawn(settings, n) for n in ("worker", "sink")}
        try:
            query = SinkQuery(f"http://127.0.0.1:{settings.sink_http_port}")
            return latency_probe.measure(
                self.bootstrap, query, self.workload.events, rate, seconds, drain_seconds=180
            )
        finally:
            for p in procs.values():
                stop_service(p)

    def close(self) -> None:
        if self.broker is not None:
            self.broker.stop()


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=Settings().partitions)
    parser.add_argument(
        "--only", default="limit,worker1,sink,e2e1,worker2,e2e2,latency1000,latency5000"
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=30.0, help="load per latency scenario"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    args = parser.parse_args()
    wanted = set(args.only.split(","))

    workload = generate_campaign(
        args.messages, seed=args.seed, account="bench", hash_key=b"bench-hash-key"
    )
    events = len(workload.events)
    print(f"{args.messages:,} messages, {events:,} events", flush=True)
    root = Path(tempfile.mkdtemp(prefix="smsfunnel-bench-"))
    (root / "logs").mkdir()
    bench = Bench(root, workload, args.partitions)
    runs: list[Run] = []
    latencies: list[Latency] = []
    timeout = max(600.0, events / 50)
    report: Callable[[Run], None] = lambda r: print(  # noqa: E731
        f"  {r.name}: {r.records:,} records in {r.seconds:.2f} s = {r.rate:,.0f}/s "
        f"(startup {r.startup_seconds:.1f} s) {r.processes}",
        flush=True,
    )
    try:
        settings = bench.fresh()
        inputs = end_offsets(bench.bootstrap, WORKER_INPUTS)
        bare = bare_consume(bench.bootstrap, WORKER_INPUTS, inputs)
        runs.append(bare)
        report(bare)
        if "limit" in wanted:
            runs.append(bench.engine_noop(inputs, timeout))
            report(runs[-1])
        if wanted & {"worker1", "sink"}:
            run, procs = bench.stage(
                "worker alone, 1 process",
                settings,
                [("worker", 0)],
                settings.worker_id,
                WORKER_INPUTS,
                events,
                timeout,
                outputs_appeared([FUNNEL_ROWS.name]),
            )
            # The worker's own outputs feed it too (references, activity): count its inputs
            # after the fact, and what it produced beyond them per input event.
            consumed = end_offsets(bench.bootstrap, WORKER_INPUTS)
            produced = end_offsets(bench.bootstrap, SINK_TOPICS) + consumed - inputs
            run.produced_per_input = produced / events
            for p in procs.values():
                stop_service(p)
            run.state_bytes_per_message = du(settings.state_dir) / args.messages
            runs.append(run)
            report(run)
            if "sink" in wanted:
                rows = end_offsets(bench.bootstrap, SINK_TOPICS)
                run, procs = bench.stage(
                    "sink alone", settings, [("sink", 0)], settings.sink_group, SINK_TOPICS,
                    rows, timeout, http_ready(f"http://127.0.0.1:{settings.sink_http_port}/health"),
                )  # fmt: skip
                for p in procs.values():
                    stop_service(p)
                runs.append(run)
                report(run)
        for n in (1, 2):
            if f"worker{n}" in wanted and n > 1:
                settings = bench.fresh()
                run, procs = bench.stage(
                    f"worker alone, {n} processes",
                    settings,
                    [("worker", c) for c in range(n)],
                    settings.worker_id,
                    WORKER_INPUTS,
                    events,
                    timeout,
                    outputs_appeared([FUNNEL_ROWS.name]),
                )
                for p in procs.values():
                    stop_service(p)
                runs.append(run)
                report(run)
            if f"e2e{n}" in wanted:
                settings = bench.fresh()
                services = [("worker", c) for c in range(n)] + [("sink", 0)]
                run, procs = bench.stage(
                    f"end to end, {n} worker process{'es' if n > 1 else ''}",
                    settings,
                    services,
                    settings.worker_id,
                    WORKER_INPUTS,
                    events,
                    timeout,
                    outputs_appeared([FUNNEL_ROWS.name]),
                )
                # then the sink's catch-up on top: the end is when it has committed it all
                samples: dict[str, ProcessUse] = {}
                _, tail = wait_committed(
                    bench.bootstrap, settings.sink_group, SINK_TOPICS, procs, timeout, samples,
                    lambda _: True,
                )  # fmt: skip
                run.seconds += tail
                run.processes = samples
                for p in procs.values():
                    stop_service(p)
                runs.append(run)
                report(run)
        for rate in (1_000, 5_000):
            if f"latency{rate}" in wanted:
                latencies.append(bench.latency(rate, args.latency_seconds))
                print(f"  latency: {latencies[-1].line()}", flush=True)
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"run directory kept: {root}")

    table = markdown(runs, bare, args.messages, events)
    if latencies:
        table += "\n" + latency_markdown(latencies)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        out = {
            "messages": args.messages,
            "events": events,
            "partitions": args.partitions,
            "cpus": os.cpu_count(),
            "runs": [asdict(r) | {"rate": r.rate, "vs_bare": r.rate / bare.rate} for r in runs],
            "latency": [asdict(x) for x in latencies],
        }
        args.json.write_text(json.dumps(out, indent=2))


def markdown(runs: list[Run], bare: Run, messages: int, events: int) -> str:
    lines = [
        f"{messages:,} messages, {events:,} input events, one run, {os.cpu_count()} CPUs",
        "",
        "| run | records | s | records/s | × bare consume | CPU s / M events | peak RSS MiB "
        "| produced / input | state B / message |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in runs:
        cpu = ", ".join(
            f"{n} {u.cpu_seconds / events * 1e6:,.0f}" for n, u in sorted(r.processes.items())
        )
        rss = ", ".join(f"{n} {u.peak_rss_mib:,.0f}" for n, u in sorted(r.processes.items()))
        ppi = f"{r.produced_per_input:.2f}" if r.produced_per_input is not None else ""
        sbm = f"{r.state_bytes_per_message:,.0f}" if r.state_bytes_per_message else ""
        lines.append(
            f"| {r.name} | {r.records:,} | {r.seconds:.2f} | {r.rate:,.0f} "
            f"| {r.rate / bare.rate:.3f} | {cpu} | {rss} | {ppi} | {sbm} |"
        )
    return "\n".join(lines) + "\n"


def latency_markdown(latencies: list[Latency]) -> str:
    s = latency_probe.seconds
    lines = [
        "| input rate asked | produced | probes queryable | p50 s | p99 s | max s |",
        "|---|---|---|---|---|---|",
    ]
    for x in latencies:
        lines.append(
            f"| {x.rate:,}/s | {x.achieved_rate:,.0f}/s for {x.seconds:.0f} s | "
            f"{x.queryable} of {x.probes} | {s(x.p50)} | {s(x.p99)} | {s(x.max)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

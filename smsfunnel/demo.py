"""The main job on the embedded default: local Kafka, worker and sink processes, a generated
campaign, a report, and a check of the report against the generator's ground truth."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infra.local_kafka import LocalKafka, free_port
from infra.topics import provision_topics
from producers.kafka_producer import EventProducer
from producers.workload import Workload, generate_campaign
from sinks.query_client import DirectQuery
from smsfunnel.drain import pipeline_stages, wait_until_drained
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.report import VariantSummary, campaign_summary, print_report
from smsfunnel.settings import Settings


@dataclass
class DemoResult:
    matches_truth: bool
    events: int
    pipeline_seconds: float
    events_per_second: float


def compare_with_truth(
    summaries: list[VariantSummary], workload: Workload, account: str
) -> list[str]:
    """Differences between the report and the generator's decisions (empty when equal)."""
    got = {(s.campaign, s.variant): s for s in summaries}
    problems = []
    for (acct, campaign, variant), truth in sorted(workload.truth.items()):
        if acct != account:
            continue
        s = got.get((campaign, variant))
        if s is None:
            problems.append(f"{campaign}/{variant}: missing from the report")
            continue
        pairs = {
            "sent": (s.sent, truth.sent),
            "delivered": (s.delivered, truth.delivered),
            "unique clicks": (s.unique_clicks, truth.clicked_messages),
            "clicks": (s.clicks, truth.clicks),
            "converting": (s.converting, truth.converting_messages),
            "conversions": (s.conversions, truth.conversions),
            "after-window conversions": (
                s.after_window_conversions,
                truth.after_window_conversions,
            ),
            "revenue": (s.revenue, truth.revenue),
            "cost": (s.cost, truth.cost),
        }
        for name, (have, want) in pairs.items():
            if Decimal(have) != Decimal(want):
                problems.append(f"{campaign}/{variant} {name}: report {have}, truth {want}")
    return problems


def run_demo(
    settings: Settings, messages: int, seed: int, keep_kafka: bool, console: Console
) -> DemoResult:
    timings: dict[str, float] = {}
    started = time.monotonic()
    local = None
    if settings.kafka_bootstrap:
        bootstrap = settings.kafka_bootstrap
    else:
        local = LocalKafka(settings.kafka_dir)
        with console.status("Starting local Kafka (first run resolves its jars with Maven)…"):
            bootstrap = local.start().address
    timings["kafka up"] = time.monotonic() - started
    console.print(f"Kafka at {bootstrap}")
    provision_topics(bootstrap, settings.partitions, settings.worker_id)

    # Free ports for this run's services, so a demo never collides with another.
    settings = settings.model_copy(
        update={"worker_metrics_port": free_port(), "sink_http_port": free_port()}
    )
    env = settings_env(settings, bootstrap)
    logs = settings.state_dir / "logs"
    worker = spawn_service("worker", env, logs)
    sink = spawn_service("sink", env, logs)
    console.print(f"Worker and sink started (logs in {logs})")
    account = f"demo-seed{seed}"
    try:
        workload = generate_campaign(
            messages,
            seed=seed,
            account=account,
            hash_key=settings.phone_hash_key.get_secret_value().encode(),
        )
        produce_started = time.monotonic()
        producer = EventProducer(bootstrap)
        with Progress(
            TextColumn("Producing events"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("produce", total=len(workload.events))
            for i, event in enumerate(workload.events, 1):
                producer.send(event)
                if i % 1000 == 0:
                    progress.update(task, completed=i)
            producer.close()
            progress.update(task, completed=len(workload.events))
        timings["produce"] = time.monotonic() - produce_started

        stages = pipeline_stages(settings.worker_id, settings.sink_group)
        with console.status("Waiting for the join and the sink to catch up…") as status:

            def show(group: str, lag: int) -> None:
                for proc, name in ((worker, "worker"), (sink, "sink")):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.returncode}; see {logs}")
                status.update(f"Waiting for {group}: {lag:,} records behind")

            wait_until_drained(
                bootstrap, stages, timeout=max(300.0, messages / 20), on_progress=show
            )
        drained = time.monotonic()
        timings["produce → in ClickHouse"] = drained - produce_started
    finally:
        stop_service(worker)
        stop_service(sink)

    reader = DirectQuery(settings.effective_clickhouse_dsn)
    try:
        print_report(reader, account, console)
        summaries = campaign_summary(reader, account)
    finally:
        reader.close()
    problems = compare_with_truth(summaries, workload, account)
    if problems:
        console.print("[bold red]Report differs from the generator's ground truth:[/]")
        for p in problems:
            console.print(f"  {p}")
    else:
        console.print(
            "[bold green]Report equals the generator's ground truth[/] "
            "(sent, delivered, clicks, conversions inside and after their window, revenue and "
            "cost of every variant)."
        )
    seconds = timings["produce → in ClickHouse"]
    rate = len(workload.events) / seconds if seconds else 0.0
    table = Table(title="Run")
    table.add_column("what")
    table.add_column("figure", justify="right")
    table.add_row("messages", f"{messages:,}")
    table.add_row(
        "events produced (incl. duplicates)",
        f"{len(workload.events):,} ({len(workload.events) - workload.distinct_events:,} repeats)",
    )
    for name, value in timings.items():
        table.add_row(f"{name} (s)", f"{value:.1f}")
    table.add_row("end-to-end events/s", f"{rate:,.0f}")
    console.print(table)
    if local is not None and not keep_kafka:
        local.stop()
    return DemoResult(not problems, len(workload.events), seconds, rate)

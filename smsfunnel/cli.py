"""One entry point for every operation: `smsfunnel --help`."""

from __future__ import annotations

import faulthandler
import logging
import sys
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from schemas.attribution_credit import AttributionModel
from smsfunnel.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, help="smsfunnel: what SMS campaigns earn, streamed.")
kafka_app = typer.Typer(no_args_is_help=True, help="The local Apache Kafka broker (KRaft).")
topics_app = typer.Typer(no_args_is_help=True, help="The topic catalogue on the broker.")
app.add_typer(kafka_app, name="kafka")
app.add_typer(topics_app, name="topics")
# Reports are wide; when output is not a terminal rich would wrap them at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format='{"ts":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}',
        stream=sys.stderr,
    )


def _local_kafka():  # type: ignore[no-untyped-def]
    from infra.local_kafka import LocalKafka

    return LocalKafka(get_settings().kafka_dir)


@kafka_app.command("install")
def kafka_install() -> None:
    """Resolve the broker's jars from Maven Central."""
    with console.status("Resolving Kafka jars with Maven…"):
        _local_kafka().install()
    console.print("Kafka jars installed.")


@kafka_app.command("start")
def kafka_start() -> None:
    """Start the local broker (or find it running) and wait until it answers."""
    with console.status("Starting Kafka…"):
        state = _local_kafka().start()
    console.print(f"Kafka running at {state.address} (pid {state.pid})")


@kafka_app.command("stop")
def kafka_stop() -> None:
    _local_kafka().stop()
    console.print("Kafka stopped.")


@kafka_app.command("status")
def kafka_status() -> None:
    state = _local_kafka().running()
    if state:
        console.print(f"running at {state.address} (pid {state.pid})")
    else:
        console.print("not running")
        raise typer.Exit(1)


@kafka_app.command("wipe")
def kafka_wipe() -> None:
    """Stop the broker and delete its data and logs (the jars stay)."""
    _local_kafka().wipe()
    console.print("Kafka data wiped.")


@topics_app.command("provision")
def topics_provision() -> None:
    """Create missing catalogue topics and bring existing ones to the catalogue's config."""
    from infra.topics import provision_topics

    settings = get_settings()
    result = provision_topics(settings.bootstrap_servers(), settings.partitions, settings.worker_id)
    console.print(f"created: {result.created or 'none'}; updated: {result.updated or 'none'}")


@app.command()
def migrate(
    to: int | None = typer.Option(None, help="Target version (default: latest)."),
    cluster: str | None = typer.Option(
        None, help="Print the cluster variant (Replicated + Distributed) for this cluster."
    ),
) -> None:
    """Apply (or revert to --to) the ClickHouse migrations; --cluster prints the cluster DDL."""
    if cluster is not None:
        from sinks.migrations.cluster import cluster_ddl

        for version, name, statements in cluster_ddl(cluster):
            print(f"-- migration {version}: {name}")
            for statement in statements:
                print(statement.strip() + ";\n")
        return
    from sinks.clickhouse import connect
    from sinks.migrations.runner import migrate as run_migrations

    client = connect(get_settings().effective_clickhouse_dsn)
    changed = run_migrations(client, to)
    console.print(f"migrations changed: {changed or 'none'}")


@app.command()
def worker(loglevel: str = "info") -> None:
    """Run the worker: join, resolver, attribution (scale out: more of these in its group)."""
    from stream_processors.worker_app import run_worker

    faulthandler.enable()  # a crash in native code (librdkafka, RocksDB) leaves the stacks
    run_worker(get_settings(), loglevel)


@app.command()
def sink() -> None:
    """Run the ClickHouse sink (also serves /metrics and a read-only /query)."""
    from sinks.funnel_sink import run_sink

    faulthandler.enable()  # a crash in native code (librdkafka, chdb) leaves the stacks
    _logging()
    run_sink(get_settings())


@app.command()
def ingest() -> None:
    """Run the receivers: webhooks, postbacks, beacons and the send API (/docs, /metrics)."""
    import uvicorn

    from producers.receivers.app import create_app

    _logging()
    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.ingest_host,
        port=settings.ingest_http_port,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        log_level="warning",
    )


# Built by `make install` (Makefile: the `redirector` target) from producers/redirector_go.
REDIRECTOR_BINARY = (
    Path(__file__).resolve().parent.parent / ".smsfunnel" / "bin" / "smsfunnel-redirector"
)


@app.command()
def redirector() -> None:
    """Run the click redirector (GET /<token> → 302): the compiled one unless
    SMSFUNNEL_REDIRECTOR_IMPL=python."""
    _logging()
    settings = get_settings()
    if settings.redirector_impl == "go":
        _exec_compiled_redirector(settings)
    import uvicorn

    uvicorn.run(
        "producers.redirector:create_redirector",
        factory=True,
        host=settings.redirector_host,
        port=settings.redirector_port,
        workers=settings.redirector_workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 in brackets


def _exec_compiled_redirector(settings: Settings) -> NoReturn:
    """Replace this process with the Go redirector, handing it what the settings and the topic
    catalogue say (they stay the one source of truth); keys go in its environment, not argv."""
    import os

    from producers.redirector import QUEUE_LIMIT
    from schemas.topics import CLICKS, LINKS

    if not REDIRECTOR_BINARY.exists():
        console.print(
            f"[red]{REDIRECTOR_BINARY} is not built: run `make install` "
            "(or set SMSFUNNEL_REDIRECTOR_IMPL=python)[/red]"
        )
        raise typer.Exit(2)
    env = dict(os.environ)
    env["SMSFUNNEL_LINK_SIGNING_KEY"] = settings.link_signing_key.get_secret_value()
    env["SMSFUNNEL_PHONE_HASH_KEY"] = settings.phone_hash_key.get_secret_value()
    args = [
        str(REDIRECTOR_BINARY),
        f"-listen={_host_port(settings.redirector_host, settings.redirector_port)}",
        f"-bootstrap={settings.bootstrap_servers()}",
        f"-links-topic={LINKS.name}",
        f"-clicks-topic={CLICKS.name}",
        f"-linger-ms={settings.redirector_linger_ms}",
        f"-queue-limit={QUEUE_LIMIT}",
    ]
    sys.stderr.flush()
    os.execve(args[0], args, env)


@app.command()
def replay(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="NDJSON or CSV file."),
    fmt: str | None = typer.Option(None, "--format", help="csv or ndjson (default: by suffix)."),
) -> None:
    """Replay a file of events into Kafka, with progress and a summary of what was rejected."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
    from rich.table import Table

    from producers.kafka_producer import EventProducer
    from producers.replay import replay_file

    settings = get_settings()
    producer = EventProducer(settings.bootstrap_servers())
    size = path.stat().st_size
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"Replaying {path.name}", total=size)
        summary = replay_file(
            path,
            producer,
            settings.phone_hash_key.get_secret_value().encode(),
            fmt,
            on_progress=lambda done: progress.update(task, completed=done),
        )
    rejected = sum(summary.rejected.values())
    console.print(
        f"{summary.read:,} records read, {summary.accepted:,} acknowledged by Kafka, "
        f"{rejected:,} rejected."
    )
    if rejected:
        table = Table("reason", "records", "first line", title="Rejected")
        for reason, count in summary.rejected.most_common():
            table.add_row(reason, f"{count:,}", str(summary.first_line[reason]))
        console.print(table)


@app.command()
def observe(
    port: int = typer.Option(9090, help="Prometheus web and API port (127.0.0.1)."),
    interval: str = typer.Option("15s", help="Scrape and rule evaluation interval."),
) -> None:
    """Start Debian's Prometheus scraping the running stack (ports from the settings), with the
    alert rules of infra/prometheus/alerts.yml; Ctrl-C stops it."""
    from smsfunnel.observe import start_prometheus, write_config

    settings = get_settings()
    directory = settings.state_dir / "prometheus"
    config = write_config(settings, directory, interval)
    try:
        proc = start_prometheus(config, directory / "data", port, directory / "prometheus.log")
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    log = directory / "prometheus.log"
    console.print(f"Prometheus on http://127.0.0.1:{port} (config {config}, log {log})")
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(30)


@app.command()
def generate(
    messages: int = typer.Option(10_000, min=1),
    seed: int = 7,
    account: str = "demo",
    out: Path = typer.Option(..., help="NDJSON file to write the events to."),
) -> None:
    """Write a synthetic campaign's events (shuffled, with retried duplicates) as NDJSON."""
    from producers.workload import generate_campaign, iter_ndjson

    settings = get_settings()
    workload = generate_campaign(
        messages,
        seed=seed,
        account=account,
        hash_key=settings.phone_hash_key.get_secret_value().encode(),
    )
    with out.open("wb") as f:
        for line in iter_ndjson(workload):
            f.write(line)
    console.print(
        f"{len(workload.events):,} events ({workload.distinct_events:,} distinct) → {out}"
    )


def _read_client(settings: Settings):  # type: ignore[no-untyped-def]
    """ClickHouse as the user's commands read it: through a running sink, which holds the
    embedded store, else directly."""
    import urllib.request

    from sinks.query_client import DirectQuery, SinkQuery

    sink_url = f"http://127.0.0.1:{settings.sink_http_port}"
    try:
        urllib.request.urlopen(sink_url + "/health", timeout=1).close()
        return SinkQuery(sink_url)
    except OSError:
        return DirectQuery(settings.effective_clickhouse_dsn)


@app.command()
def report(
    account: str = typer.Option("demo-seed7", help="Account (tenant) to report on."),
    html_path: Path | None = typer.Option(
        None, "--html", help="Also write the self-contained HTML report (charts) to this file."
    ),
    model: AttributionModel = typer.Option(
        AttributionModel.LAST_CLICK, help="Attribution model of the revenue figures."
    ),
    currency: str = typer.Option("USD", help="Currency of the revenue and cost figures."),
) -> None:
    """Per campaign and variant: sent, delivered, unique clicks, CTR, conversions, attributed
    revenue, cost, RPM, RPC, CPA, ROAS (the metric views' figures)."""
    from smsfunnel.report import print_report

    client = _read_client(get_settings())
    print_report(client, account, console, model.value, currency)
    if html_path is not None:
        from smsfunnel.html_report import gather, render_html

        html_path.write_text(
            render_html(gather(client, account, model.value, currency)), encoding="utf-8"
        )
        console.print(f"HTML report → {html_path}")


@app.command()
def diagnose(
    account: str = typer.Option("demo-seed7", help="Account (tenant) to check."),
    as_of: str | None = typer.Option(
        None,
        help="End of the recent period (UTC, e.g. 2026-12-04T09:00); default: the hour "
        "after the account's latest send hour.",
    ),
    recent_hours: int = typer.Option(24, min=1, help="Length of the recent period."),
    baseline_hours: int = typer.Option(168, min=1, help="The baseline: the hours before it."),
    min_sample: int = typer.Option(
        200, min=1, help="Messages each side of a comparison must have, or it is not judged."
    ),
    min_clicks: int = typer.Option(100, min=1, help="Clicked messages, likewise."),
    threshold: list[str] = typer.Option(
        [], "--set", help="Another threshold, NAME=VALUE (docs/diagnostics.md lists them)."
    ),
) -> None:
    """Campaign health: delivery drops, dropped spikes, sent collapses, CTR collapses, clicks
    lost on one carrier, conversions far below clicks, opt-out spikes; each finding with its
    evidence, likely cause and what to do."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from sinks.health_rules import Thresholds, diagnose

    values: dict[str, object] = {
        "recent_hours": recent_hours,
        "baseline_hours": baseline_hours,
        "min_sample": min_sample,
        "min_clicks": min_clicks,
    }
    for item in threshold:
        name, sep, value = item.partition("=")
        if not sep or name not in Thresholds.model_fields:
            known = ", ".join(Thresholds.model_fields)
            raise typer.BadParameter(f"{item!r}: expected NAME=VALUE, NAME one of {known}")
        values[name] = value
    try:
        thresholds = Thresholds.model_validate(values)
        end = datetime.fromisoformat(as_of) if as_of else None
        if end is not None:
            end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    until, findings = diagnose(_read_client(get_settings()), account, thresholds, end)
    if until is None:
        console.print(f"{account}: nothing sent yet, nothing to judge")
        return
    console.print(
        f"{account}: the {thresholds.recent_hours} h to {until:%Y-%m-%d %H:%M} UTC against the "
        f"{thresholds.baseline_hours} h before; {len(findings)} finding(s)"
    )
    for f in findings:
        about = f" ({f.subject})" if f.subject else ""
        console.print(f"\n[bold]{f.check}[/bold] campaign {f.campaign or '(all)'}{about}")
        console.print(f"  evidence: {f.evidence}", highlight=False)
        console.print(f"  likely cause: {f.cause}", highlight=False)
        console.print(f"  what to do: {f.action}", highlight=False)


@app.command("split")
def split_command(
    campaign: str = typer.Option(..., help="Campaign whose next sends to split."),
    account: str = typer.Option("demo-seed7", help="Account (tenant)."),
    model: AttributionModel = typer.Option(
        AttributionModel.LAST_CLICK, help="Attribution model of the revenue it weighs."
    ),
    currency: str = typer.Option("USD", help="Currency of that revenue."),
    floor: float = typer.Option(0.05, min=0, max=0.5, help="Every variant's least share."),
    min_messages: int = typer.Option(
        500, min=1, help="Messages each variant needs before the split moves off even."
    ),
) -> None:
    """The traffic split for a campaign's next sends: Thompson sampling on attributed revenue
    per message, with an exploration floor (the sink serves the same at
    /v1/accounts/{account}/campaigns/{campaign}/split)."""
    from sinks.creative_split import SplitSettings
    from sinks.split_recommendation import recommend

    try:
        settings = SplitSettings(floor=floor, min_messages=min_messages)
        r = recommend(
            _read_client(get_settings()), account, campaign, model.value, currency, settings
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not r.split:
        console.print(f"{account}/{campaign}: nothing sent yet, no split to propose")
        return
    console.print(f"{account}/{campaign}, revenue per message under {r.model} ({r.currency}):")
    for variant, share in r.split.items():
        f = r.variants[variant]
        rpm = f.revenue / f.messages if f.messages else 0
        console.print(
            f"  {variant or '(none)'}: {share:.1%} of the next sends "
            f"({f.messages:,} sent, {f.conversions:,} conversions, {rpm:.4f} per message)",
            highlight=False,
        )


@app.command()
def verdicts(
    campaign: str = typer.Option("", help="Campaign to judge; default: every campaign."),
    account: str = typer.Option("demo-seed7", help="Account (tenant)."),
    model: AttributionModel = typer.Option(
        AttributionModel.LAST_CLICK, help="Attribution model of the revenue compared."
    ),
    currency: str = typer.Option("USD", help="Currency of that revenue."),
    alpha: float = typer.Option(0.05, help="Family-wise significance level (two-sided)."),
    power: float = typer.Option(0.8, help="Power the sample sizes are for."),
    mde: float = typer.Option(
        0.10, help="Minimum detectable effect, relative to the rest's revenue per message."
    ),
    min_successes: int = typer.Option(
        30, help="Earning (or converted) messages each side needs before a call."
    ),
) -> None:
    """Each variant against the rest of its campaign on attributed revenue per message (Welch)
    and conversion rate: winner, loser or undecided, and the messages an undecided test still
    needs (docs/decisions.md)."""
    from sinks.variant_verdicts import VerdictSettings, verdicts

    try:
        settings = VerdictSettings(alpha, power, mde, min_successes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    found = verdicts(
        _read_client(get_settings()), account, campaign, model.value, currency, settings
    )
    if not found:
        console.print(f"{account}: no sent messages to judge")
        return
    console.print(
        f"{account}: revenue per message under {model.value} ({currency}), each variant against "
        f"the rest of its campaign; minimum detectable effect {mde:.0%}, power {power:.0%}"
    )
    for v in found:
        rpm = "n/a" if v.revenue_per_message is None else f"{v.revenue_per_message:.4f}"
        rest = "n/a" if v.rest_revenue_per_message is None else f"{v.rest_revenue_per_message:.4f}"
        line = (
            f"  {v.campaign}/{v.variant or '(none)'}: [bold]{v.revenue_call}[/bold] on revenue, "
            f"{rpm} vs {rest} per message ({v.sent:,} sent, {v.earning:,} earning); "
            f"{v.conversion_call} on conversion; {v.reason}"
        )
        if v.more_messages:
            line += f"; {v.more_messages:,} more messages ({v.messages_needed:,} per side)"
        console.print(line, highlight=False, soft_wrap=True)


@app.command("send-times")
def send_times_command(
    campaign: str = typer.Option("", help="One campaign; default: every campaign."),
    account: str = typer.Option("demo-seed7", help="Account (tenant)."),
    model: AttributionModel = typer.Option(
        AttributionModel.LAST_CLICK, help="Attribution model of the revenue."
    ),
    currency: str = typer.Option("USD", help="Currency of that revenue."),
    level: float = typer.Option(0.95, help="Level of the intervals."),
    min_messages: int = typer.Option(100, min=1, help="Messages a slot needs to be judged."),
    min_earning: int = typer.Option(10, min=1, help="Earning messages a slot needs, likewise."),
) -> None:
    """Per segment, the recipient-local hours and weekdays whose sends earned most per message,
    with intervals, and "not enough data" where that is the truth (docs/decisions.md)."""
    from sinks.send_times import SendTimeSettings, Slot, label, recommend

    try:
        settings = SendTimeSettings(level, min_messages, min_earning)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    found = recommend(
        _read_client(get_settings()), account, campaign, model.value, currency, settings
    )
    if not found:
        console.print(f"{account}: no sent messages")
        return

    def show(kind: str, best: list[Slot] | None, every: list[Slot]) -> None:
        judged = sum(1 for x in every if x.enough)
        if best is None:
            console.print(f"    best {kind}: not enough data ({judged} of {len(every)} judged)")
            return
        top, *tied = best
        also = f"; as good within the interval: {', '.join(label(kind, x.value) for x in tied)}"
        console.print(
            f"    best {kind}: {label(kind, top.value)}, {top.revenue_per_message:.4f} per "
            f"message ({level:.0%}: {top.low:.4f} to {top.high:.4f}, {top.sent:,} sent)"
            f"{also if tied else ''}",
            highlight=False,
            soft_wrap=True,
        )

    console.print(f"{account}: revenue per message under {model.value} ({currency})")
    for seg in found:
        console.print(f"  segment {seg.segment or '(none)'}:")
        show("hour", seg.best_hours, seg.hours)
        show("weekday", seg.best_weekdays, seg.weekdays)


@app.command()
def demo(
    messages: int = typer.Option(10_000, min=1, help="Messages in the demo campaign."),
    seed: int = typer.Option(7, help="Workload seed; the account is demo-seed<seed>."),
    keep_kafka: bool = typer.Option(False, help="Leave the local broker running afterwards."),
) -> None:
    """The main job: local Kafka → Faust join → ClickHouse sink on a generated campaign,
    then the report, checked against the generator's ground truth."""
    from smsfunnel.demo import run_demo

    result = run_demo(get_settings(), messages, seed, keep_kafka, console)
    if not result.matches_truth:
        raise typer.Exit(1)

"""Real parts: a throwaway Apache Kafka broker (KRaft, from the project's jars), the
worker and the ClickHouse sink as separate processes, and the embedded ClickHouse engine.
Nothing is mocked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from subprocess import Popen
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from pydantic import SecretStr

from infra.local_kafka import LocalKafka, free_port
from infra.topics import provision_topics
from producers.tracking_links import sign_token
from sinks.query_client import SinkQuery
from smsfunnel.drain import pipeline_stages, wait_until_drained
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.report import campaign_summary
from smsfunnel.settings import PROJECT_ROOT, AccountSecrets, Settings
from tests.ground_truth import (
    ExpectedMessage,
    conversions_after_their_click_window,
    expected_messages,
    expected_variants,
    expected_weights,
)

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

    def _respawn(self, proc: Popen[bytes], name: str) -> Popen[bytes]:
        stop_service(proc)  # returns at once when it already exited
        return spawn_service(name, settings_env(self.settings, self.bootstrap), self.logs)

    def restart_worker(self) -> None:
        self.worker = self._respawn(self.worker, "worker")

    def restart_sink(self) -> None:
        self.sink = self._respawn(self.sink, "sink")

    def kill_worker(self) -> None:
        self.worker.kill()  # SIGKILL: no flush, no commit, no leaving the group
        self.worker.wait()

    def kill_sink(self) -> None:
        self.sink.kill()  # SIGKILL: a batch in flight is neither inserted nor committed
        self.sink.wait()

    def alive(self) -> None:
        for name, proc in (("worker", self.worker), ("sink", self.sink)):
            # CI keeps only the test's output: the log's last lines say why it died.
            assert proc.poll() is None, (
                f"{name} died ({proc.returncode}); logs in {self.logs}"
                f"\n--- last lines of {name}.log ---\n{log_tail(self.logs / f'{name}.log', 60)}"
            )

    def drain(self, timeout: float = 180.0, check: Callable[[], None] | None = None) -> None:
        """Wait until every stage has committed everything; `check` runs at each look (by
        default: both services still alive)."""

        def progress(group: str, lag: int) -> None:
            (check or self.alive)()

        try:
            wait_until_drained(
                self.bootstrap,
                pipeline_stages(self.settings.worker_id, self.settings.sink_group),
                timeout=timeout,
                on_progress=progress,
            )
        except TimeoutError as exc:
            # CI keeps only the test's output: say what the stages were doing.
            tails = "".join(
                f"\n--- last lines of {name}.log ---\n{log_tail(self.logs / f'{name}.log')}"
                for name in ("worker", "sink")
            )
            raise TimeoutError(f"{exc}{tails}") from None


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a service log, or why there are none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


def assert_rows_match_ground_truth(
    p: Pipeline, account: str, events: list[Any], messages: int
) -> dict[tuple[str, str], ExpectedMessage]:
    """Every message's funnel row in ClickHouse against the offline count of its events:
    version = its distinct events (a message left short names itself), delivery status, human
    clicks, conversions inside and after their window, and that window. Returns the offline
    messages."""
    truth = expected_messages(events)
    rows = p.query.rows(
        "SELECT message_id, version, delivery_status, human_clicks, conversions, "
        "after_window_conversions, attribution_window_hours FROM funnel_rows FINAL "
        "WHERE account = {a:String}",
        {"a": account},
    )
    assert len(rows) == len(truth) == messages
    short = [
        r["message_id"]
        for r in rows
        if r["version"] != truth[(account, r["message_id"])].distinct_events
    ]
    assert short == [], f"{len(short)} messages lost events, e.g. {short[:3]}"
    for r in rows:
        want = truth[(account, r["message_id"])]
        assert (
            r["delivery_status"],
            r["human_clicks"],
            r["conversions"],
            r["after_window_conversions"],
            r["attribution_window_hours"],
        ) == (
            want.delivery_status,
            want.human_clicks,
            len(want.conversions),
            len(want.after_window_conversions),
            (want.attribution_window_hours or 7 * 24) if want.has_send else 0,
        ), r["message_id"]
    return truth


def assert_after_window_conversions_are_late(p: Pipeline, account: str, events: list[Any]) -> None:
    """Every conversion event (repeats of an order too) that happened after the window from
    the click it carries, counted from the raw events, is in late_events with reason
    after_window, once; nothing else is."""
    want = {
        event_id for a, event_id in conversions_after_their_click_window(events) if a == account
    }
    rows = p.query.rows(
        "SELECT event_id, event_type FROM late_events FINAL "
        "WHERE account = {a:String} AND reason = 'after_window'",
        {"a": account},
    )
    assert {r["event_id"] for r in rows} == want
    assert {r["event_type"] for r in rows} <= {"conversion"}


def assert_campaign_totals(
    p: Pipeline, account: str, truth: dict[tuple[str, str], ExpectedMessage]
) -> None:
    """The report's per-variant totals against the offline count of the same messages."""
    offline = expected_variants(truth)
    summaries = campaign_summary(p.query, account)
    assert {(account, s.campaign, s.variant) for s in summaries} == set(offline)
    for s in summaries:
        want = offline[(account, s.campaign, s.variant)]
        assert (s.sent, s.delivered, s.unique_clicks, s.conversions, s.revenue) == (
            want.sent,
            want.delivered,
            want.clicked_messages,
            want.conversions,
            want.revenue,
        ), (s.campaign, s.variant)


MODELS = ("last_click", "first_click", "linear", "time_decay", "position_based")


def assert_credits_match_ground_truth(
    p: Pipeline, account: str, attribution: dict[str, Any]
) -> int:
    """Every conversion's credit rows in ClickHouse (one per model, replaced as a whole)
    against `attribution` from tests.ground_truth.expected_attribution: the credited touches,
    the amount, and each weight (exact to 1e-20 for the exact models, 1e-9 relative for time
    decay). Returns how many conversions credit at least one touch."""
    rows = p.query.rows(
        "SELECT order_id, model, conversion_event_id, toString(amount) AS amount, touch_ids, "
        "message_ids, weights FROM attribution_credits FINAL WHERE account = {a:String}",
        {"a": account},
    )
    got = {(r["order_id"], r["model"]): r for r in rows}
    orders = {order_id for order_id, _ in got}
    assert orders == set(attribution), (
        f"credited but not in ground truth: {sorted(orders - set(attribution))}; "
        f"in ground truth, not credited: {sorted(set(attribution) - orders)}"
    )
    assert len(got) == len(MODELS) * len(attribution)
    attributed = 0
    for order_id, (conversion, eligible) in attribution.items():
        for model in MODELS:
            r = got[(order_id, model)]
            assert r["conversion_event_id"] == conversion.event_id
            assert Decimal(r["amount"]) == conversion.amount
            want = [
                (t[1], w)
                for t, w in zip(
                    eligible, expected_weights(model, eligible, conversion.occurred_at), strict=True
                )
                if w != 0
            ]
            assert r["touch_ids"] == [tid for tid, _ in want], (order_id, model)
            weights = [Decimal(w) for w in r["weights"]]
            if want:
                assert sum(weights) == 1
                attributed += model == "last_click"
            for have, (_, w) in zip(weights, want, strict=True):
                if isinstance(w, float):
                    assert math.isclose(float(have), w, rel_tol=1e-9)
                else:
                    assert abs(Fraction(have) - Fraction(w)) <= Fraction(1, 10**20)
    return attributed


# A phone's browser: its clicks are human (click_classification.py).
BROWSER = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"}


def register_link(edge: Edge, destination: str, **extra: str) -> str:
    resp = httpx.post(
        f"{edge.url}/v1/accounts/acme/links",
        json={"destination": destination, **extra},
        headers={"Authorization": "Bearer acme-api-key"},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["link_id"]


def get_until_known(
    url: str, timeout: float = 20.0, method: str = "GET", headers: dict[str, str] | None = None
) -> httpx.Response:
    """The redirector follows the link registry asynchronously: wait until it knows the link."""
    deadline = time.monotonic() + timeout
    while True:
        resp = httpx.request(method, url, follow_redirects=False, headers=headers)
        if resp.status_code != 404 or time.monotonic() > deadline:
            return resp
        time.sleep(0.1)


def human_click(edge: Edge, link_id: str, message_id: str) -> str:
    """A person's tap on acme's link in the message, through the compiled redirector: its
    click id (the smsclid the redirect hands the landing page)."""
    token = sign_token(LINK_KEY.encode(), "acme", link_id, message_id)
    resp = get_until_known(f"{edge.redirector_url}/{token}", headers=BROWSER)
    assert resp.status_code == 302, resp.text
    return parse_qs(urlsplit(resp.headers["location"]).query)["smsclid"][0]


def shopify_signature(body: bytes) -> str:
    """X-Shopify-Hmac-Sha256 for acme: base64 of the HMAC-SHA256 of the raw body, computed here
    as Shopify documents it, not by the code under test."""
    return base64.b64encode(
        hmac.new(b"acme-shopify-secret", body, hashlib.sha256).digest()
    ).decode()


def report_cli(
    pipeline: Pipeline, *args: str, command: str = "report"
) -> subprocess.CompletedProcess[str]:
    """`smsfunnel report ARGS` (or another reading command) as a user runs it, reading through
    the pipeline's running sink, in a wide terminal."""
    env = {
        **os.environ,
        "SMSFUNNEL_SINK_HTTP_PORT": str(pipeline.settings.sink_http_port),
        "COLUMNS": "400",
    }
    result = subprocess.run(
        [sys.executable, "-m", "smsfunnel", command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result


def metric_value(port: int, name: str, labels: str) -> float:
    """One sample of a service's /metrics on 127.0.0.1:port, e.g. ('x_total', 'kind="a"'), or
    ('x_total', '') for a metric without labels;
    0.0 when absent, or when the service does not answer (its liveness is checked apart)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    sample = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(sample):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


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


def start_pipeline(
    settings: Settings, kafka: str, sink_env: dict[str, str] | None = None
) -> Pipeline:
    """Provision the topics, start the worker and the sink (with sink_env added to its
    environment), and wait until the sink answers."""
    provision_topics(kafka, settings.partitions, settings.worker_id)
    env = settings_env(settings, kafka)
    logs = settings.state_dir / "logs"
    worker = spawn_service("worker", env, logs)
    sink = spawn_service("sink", env | (sink_env or {}), logs)
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
    except BaseException:
        stop_pipeline(p)
        raise
    return p


def stop_pipeline(p: Pipeline) -> None:
    stop_service(p.worker)  # the current processes: a test may have restarted them
    stop_service(p.sink)


def pipeline_settings(state: Path, kafka: str, **overrides: object) -> Settings:
    """A test pipeline's settings: its own state dir, the given broker, free ports for the
    worker's and the sink's HTTP servers, half-second sink batches, no campaign-health runs,
    and a worker session of 6 s (the broker's minimum): a SIGKILLed worker's partitions move
    on after that long, and the crash tests wait for it on every kill; `overrides` on top."""
    values: dict[str, object] = {
        "state_dir": state,
        "kafka_bootstrap": kafka,
        "worker_metrics_port": free_port(),
        "sink_http_port": free_port(),
        "sink_batch_seconds": 0.5,
        "worker_session_timeout": 6.0,
        "sink_health_seconds": 0,  # test_diagnostics runs it on the scenarios it plays
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def second_worker_settings(settings: Settings, state: Path) -> Settings:
    """A second worker process of the same group: its own state dir and metrics port."""
    return settings.model_copy(update={"state_dir": state, "worker_metrics_port": free_port()})


# the one account of the shared pipeline with an api key: test_split_endpoint asks as it
SPLIT_ACCOUNT, SPLIT_KEY = "shop", "shop-api-key"


@pytest.fixture(scope="session")
def pipeline(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    accounts = {SPLIT_ACCOUNT: AccountSecrets(api_key=SecretStr(SPLIT_KEY))}
    settings = pipeline_settings(tmp_path_factory.mktemp("state"), kafka, accounts=accounts)
    p = start_pipeline(settings, kafka)
    try:
        yield p
    finally:
        stop_pipeline(p)


# ---- the ingest edge -----------------------------------------------------------------------

EDGE_ACCOUNTS = {
    "acme": AccountSecrets(
        api_key=SecretStr("acme-api-key"),
        webhook_token=SecretStr("acme-hook-token"),
        twilio_auth_token=SecretStr("acme-twilio-token"),
        shopify_secret=SecretStr("acme-shopify-secret"),
        postback_secret=SecretStr("acme-postback-secret"),
    ),
    "globex": AccountSecrets(api_key=SecretStr("globex-api-key")),
}
LINK_KEY = "e2e-link-key"
PHONE_KEY = "e2e-phone-key"


@dataclass
class Edge:
    settings: Settings
    bootstrap: str
    url: str
    redirector_url: str
    ingest: Popen[bytes]
    redirector: Popen[bytes]
    logs: Path

    def alive(self) -> None:
        for name, proc in (("ingest", self.ingest), ("redirector", self.redirector)):
            assert proc.poll() is None, f"{name} died ({proc.returncode}); logs in {self.logs}"


def edge_settings(kafka: str, state: Path, **overrides: object) -> Settings:
    redirector_port = free_port()
    values: dict[str, object] = {
        "state_dir": state,
        "kafka_bootstrap": kafka,
        "accounts": EDGE_ACCOUNTS,
        "link_signing_key": SecretStr(LINK_KEY),
        "phone_hash_key": SecretStr(PHONE_KEY),
        "ingest_http_port": free_port(),
        "ingest_ack_timeout": 2.0,
        "redirector_port": redirector_port,
        "redirector_base_url": f"http://127.0.0.1:{redirector_port}",
        "worker_metrics_port": free_port(),
        "sink_http_port": free_port(),
        "sink_batch_seconds": 0.5,
        "sink_health_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def edge(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    state = tmp_path_factory.mktemp("edge")
    settings = edge_settings(kafka, state)
    provision_topics(kafka, settings.partitions, settings.worker_id)
    env = settings_env(settings, kafka)
    logs = state / "logs"
    e = Edge(
        settings,
        kafka,
        f"http://127.0.0.1:{settings.ingest_http_port}",
        settings.redirector_base_url,
        spawn_service("ingest", env, logs),
        spawn_service("redirector", env, logs),
        logs,
    )
    try:
        wait_http(e.url + "/health", 60, e.alive)
        wait_http(e.redirector_url + "/health", 60, e.alive)
        yield e
    finally:
        stop_service(e.ingest)
        stop_service(e.redirector)


@pytest.fixture(scope="session")
def python_redirector(edge: Edge) -> Iterator[str]:
    """The Python redirector beside the edge's compiled one, on the same broker and keys: the
    redirector tests run against both (one contract, two implementations)."""
    port = free_port()
    settings = edge.settings.model_copy(
        update={"redirector_port": port, "redirector_impl": "python"}
    )
    proc = spawn_service(
        "redirector", settings_env(settings, edge.bootstrap), edge.logs, "redirector-python"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", 60, lambda: _alive(proc, edge.logs))
        yield url
    finally:
        stop_service(proc)


def _alive(proc: Popen[bytes], logs: Path) -> None:
    assert proc.poll() is None, f"redirector died ({proc.returncode}); logs in {logs}"


@pytest.fixture(params=["go", "python"])
def redirector_url(request: pytest.FixtureRequest, edge: Edge) -> str:
    if request.param == "go":
        return edge.redirector_url
    return str(request.getfixturevalue("python_redirector"))


def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Every JSON record on the topic, read from the beginning until `until(records)` holds;
    AssertionError at the deadline, with what was read."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: condition not met in {timeout}s; read {records}")
            msg = consumer.poll(0.2)
            if msg is None or msg.error() or msg.value() is None:
                continue
            records.append(
                {"_key": msg.key(), "_partition": msg.partition(), **orjson.loads(msg.value())}
            )
        return records
    finally:
        consumer.close()


def raw_topic_bytes(bootstrap: str, topic: str, timeout: float = 10.0) -> bytes:
    """Everything on a topic (keys and values), concatenated: for privacy checks."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-raw-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        deadline = time.monotonic() + timeout
        ends = {}
        for p in partitions:
            while p not in ends:  # a fresh topic's partitions may have no leader yet
                try:
                    ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), 5)[1]
                except KafkaException:
                    assert time.monotonic() < deadline, f"{topic}[{p}]: no leader"
                    time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        seen: dict[int, int] = {}
        chunks: list[bytes] = []
        while any(seen.get(p, 0) < end for p, end in ends.items()):
            assert time.monotonic() < deadline, f"{topic}: could not read to the end"
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            chunks.append((msg.key() or b"") + b"|" + (msg.value() or b""))
            seen[msg.partition()] = msg.offset() + 1
        return b"\n".join(chunks)
    finally:
        consumer.close()

"""Reads through the sink's /query, scoped by account, on the real (embedded) ClickHouse engine:
an account sees only its own rows, through tables, views, subqueries and joins; what could
bypass the filter (table functions, tables without an account column) is refused; the api key
is checked."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from infra.local_kafka import free_port
from sinks.clickhouse import connect
from sinks.migrations.runner import migrate
from sinks.query_client import QueryError, SinkQuery
from sinks.query_server import serve_in_background
from smsfunnel.settings import AccountSecrets, Settings

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    client = connect(f"chdb://{tmp_path / 'ch'}")
    migrate(client)
    rows = [
        ("acme", "m1", "bf", "delivered", 1),
        ("acme", "m2", "bf", "rejected", 0),
        ("globex", "g1", "bf", "delivered", 3),
        ("o'brien", "o1", "x", "delivered", 1),
    ]
    for account, message_id, campaign, status, clicks in rows:
        client.command(
            "INSERT INTO funnel_rows (account, message_id, version, has_send, campaign, "
            "delivery_status, human_clicks, send_hour, first_event_at, last_event_at) VALUES "
            f"('{account.replace(chr(39), chr(92) + chr(39))}', '{message_id}', 1, true, "
            f"'{campaign}', '{status}', {clicks}, now(), now(), now())"
        )
    for account in ("acme", "globex"):
        client.command(
            "INSERT INTO late_events (account, message_id, event_id, event_type, occurred_at, "
            f"reason, campaign, payload) VALUES ('{account}', 'm9', 'e-{account}', 'click', "
            "now(), 'orphan', '', '')"
        )
    client.command(
        "INSERT INTO dead_letters (stage, source_topic, reason, failed_at) "
        "VALUES ('join', 't', 'bad', now())"
    )
    settings = Settings(
        state_dir=tmp_path,
        sink_http_port=free_port(),
        accounts={
            "acme": AccountSecrets(api_key=SecretStr("acme-key")),
            "globex": AccountSecrets(api_key=SecretStr("globex-key")),
            "o'brien": AccountSecrets(api_key=SecretStr("ob-key")),
        },
    )
    http = serve_in_background(settings, client, threading.Lock())
    try:
        yield f"http://127.0.0.1:{settings.sink_http_port}", settings
    finally:
        http.shutdown()
        client.close()


def test_a_scoped_query_sees_only_its_account(server: tuple[str, Settings]) -> None:
    url, _ = server
    acme = SinkQuery(url, account="acme", api_key="acme-key")
    assert {r["message_id"] for r in acme.rows("SELECT message_id FROM funnel_rows")} == {
        "m1",
        "m2",
    }
    # through a view, a subquery and a self-join alike
    (metrics,) = acme.rows("SELECT sum(sent) AS s, sum(delivered) AS d FROM campaign_metrics")
    assert (metrics["s"], metrics["d"]) == (2, 1)
    nested = acme.rows(
        "SELECT count() AS n FROM (SELECT * FROM funnel_rows) AS a "
        "JOIN funnel_rows AS b USING (account, message_id)"
    )
    assert nested == [{"n": 2}]
    assert acme.rows("SELECT count() AS n FROM funnel_rows WHERE account = 'globex'") == [{"n": 0}]
    quoted = SinkQuery(url, account="o'brien", api_key="ob-key")
    assert quoted.rows("SELECT message_id FROM funnel_rows") == [{"message_id": "o1"}]
    unscoped = SinkQuery(url)  # the operator's loopback query reads every account
    assert unscoped.rows("SELECT count() AS n FROM funnel_rows") == [{"n": 4}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count() FROM merge(currentDatabase(), '^funnel_rows$')",
        "SELECT * FROM dead_letters",
        "SELECT * FROM system.tables",
        "SELECT * FROM funnel_rows WHERE message_id IN "
        "(SELECT message_id FROM remote('127.0.0.1', default.funnel_rows))",
    ],
)
def test_what_could_bypass_the_filter_is_refused(server: tuple[str, Settings], sql: str) -> None:
    url, _ = server
    with pytest.raises(QueryError, match="a scoped query may read"):
        SinkQuery(url, account="acme", api_key="acme-key").rows(sql)


def test_the_api_key_is_checked(server: tuple[str, Settings]) -> None:
    url, settings = server
    for account, key in (("acme", "globex-key"), ("acme", None), ("initech", "x")):
        with pytest.raises(QueryError):
            SinkQuery(url, account=account, api_key=key).rows("SELECT 1")
    settings.sink_query_requires_account = True  # the handler reads the live settings
    with pytest.raises(QueryError, match="name an 'account'"):
        SinkQuery(url).rows("SELECT 1")


def test_every_account_table_and_view_the_docs_list_is_readable_scoped(
    server: tuple[str, Settings],
) -> None:
    """What an account may read is every table and view with an account column (what the
    migrations create, asked of ClickHouse, not of the allow-list) and every one docs/views.md
    lists; each comes back filtered to the account. late_events and late_event_summary were
    refused (403) although the README listed them."""
    url, _ = server
    operator = SinkQuery(url)
    with_account = {
        r["table"]
        for r in operator.rows(
            "SELECT table FROM system.columns WHERE database = currentDatabase() "
            "AND name = 'account'"
        )
    }
    documented = set(re.findall(r"^\| `(\w+)` \|", (ROOT / "docs/views.md").read_text(), re.M))
    assert {"late_events", "late_event_summary", "campaign_metrics"} <= with_account & documented
    acme = SinkQuery(url, account="acme", api_key="acme-key")
    for table in sorted(with_account | documented):
        accounts = {r["account"] for r in acme.rows(f"SELECT DISTINCT account FROM {table}")}
        assert accounts <= {"acme"}, (table, accounts)
    summary = acme.rows("SELECT account, sum(events) AS n FROM late_event_summary GROUP BY account")
    assert summary == [{"account": "acme", "n": 1}]

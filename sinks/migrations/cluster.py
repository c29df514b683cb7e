"""The cluster variant of the migrations, for users who outgrow one node: the same versions,
rewritten for a ClickHouse cluster (`smsfunnel migrate --cluster NAME --print`).

Every table becomes `<name>_local ON CLUSTER`, Replicated (Zookeeper/Keeper path per shard and
table, `{replica}` macro), plus `<name>`, a Distributed table over it, so views, reports and the
sink keep using the same names. Each Distributed table shards by a hash of its table's upsert
key: every version of a row lands on the same shard, so ReplacingMergeTree and FINAL stay exact
per shard and a sink replay replaces rows instead of adding them. (Insert deduplication tokens
do not travel through a Distributed table; the upserts are what keeps replays idempotent there,
with `distributed_foreground_insert = 1` so the sink's acknowledgement means the shards have it.)
`non_replicated_deduplication_window` is dropped: Replicated tables deduplicate by default.
Views are created ON CLUSTER over the Distributed names, unchanged.

Not run on these machines (no cluster here); tests/unit/test_cluster_ddl.py checks that every
statement parses with ClickHouse's own parser and has the shape above.
"""

from __future__ import annotations

import re

from sinks.migrations.versions import MIGRATIONS

# Upsert key of each table = its ORDER BY prefix that identifies a row's versions.
SHARDING_KEYS = {
    "funnel_rows": "cityHash64(account, message_id)",
    "funnel_hourly": "cityHash64(account, campaign)",
    "dead_letters": "cityHash64(stage, source_topic, source_partition)",
    "attribution_credits": "cityHash64(account, recipient_hash)",
    # migration 11 rebuilds attribution_credits under this name and swaps it in
    "attribution_credits_v11": "cityHash64(account, recipient_hash)",
    "message_responses": "cityHash64(account, recipient_hash)",
    "inbound_events": "cityHash64(account, event_id)",
    "late_events": "cityHash64(account, event_id)",
    "unattributable_conversions": "cityHash64(account, event_id)",
    "conversion_adjustments": "cityHash64(account, adjustment_id)",
}
_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \(", re.S)
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)(?:\(([^)]*)\))?")
_ALTER = re.compile(r"^\s*ALTER TABLE (\w+)\b", re.S)
_VIEW = re.compile(r"CREATE OR REPLACE VIEW (\w+)")
_DROP = re.compile(r"^\s*DROP (TABLE|VIEW) IF EXISTS (\w+)\s*$")
_EXCHANGE = re.compile(r"^\s*EXCHANGE TABLES (\w+) AND (\w+)\s*$")


def _table(statement: str, cluster: str) -> list[str]:
    name = _CREATE.search(statement).group(1)  # type: ignore[union-attr]
    local = f"{name}_local"

    def replicated(m: re.Match[str]) -> str:
        args = [f"'/clickhouse/tables/{{shard}}/{{database}}/{local}'", "'{replica}'"]
        if m.group(2):
            args.append(m.group(2))
        return f"ENGINE = Replicated{m.group(1)}({', '.join(args)})"

    body = _CREATE.sub(f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER {cluster} (", statement)
    body = _ENGINE.sub(replicated, body)
    body = re.sub(r"\s*SETTINGS non_replicated_deduplication_window = \d+", "", body)
    return [body, _distributed(name, cluster)]


def _distributed(name: str, cluster: str) -> str:
    local = f"{name}_local"
    return (
        f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {cluster} AS {local} "
        f"ENGINE = Distributed({cluster}, currentDatabase(), {local}, {SHARDING_KEYS[name]})"
    )


def cluster_statements(cluster: str, statements: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for statement in statements:
        if _CREATE.search(statement):
            out.extend(_table(statement, cluster))
        elif m := _ALTER.match(statement):
            name = m.group(1)
            rest = statement[m.end() :]
            # the local table holds the data; the Distributed one mirrors its columns
            out.append(f"ALTER TABLE {name}_local ON CLUSTER {cluster}{rest}")
            if "COMMENT COLUMN" not in rest:
                out.append(f"ALTER TABLE {name} ON CLUSTER {cluster}{rest}")
        elif m := _VIEW.search(statement):
            out.append(
                _VIEW.sub(f"CREATE OR REPLACE VIEW {m.group(1)} ON CLUSTER {cluster}", statement, 1)
            )
        elif statement.lstrip().startswith("INSERT INTO"):
            out.append(statement)  # once, through the Distributed table
        elif m := _EXCHANGE.match(statement):
            # the data lives in the local tables; each Distributed table is made again over
            # its own name's local table, so it takes that table's columns
            a, b = m.groups()
            out.append(f"EXCHANGE TABLES {a}_local AND {b}_local ON CLUSTER {cluster}")
            for name in (a, b):
                out.append(f"DROP TABLE IF EXISTS {name} ON CLUSTER {cluster}")
                out.append(_distributed(name, cluster))
        elif m := _DROP.match(statement):
            kind, name = m.groups()
            out.append(f"DROP {kind} IF EXISTS {name} ON CLUSTER {cluster}")
            if kind == "TABLE":
                out.append(f"DROP TABLE IF EXISTS {name}_local ON CLUSTER {cluster}")
        else:
            raise ValueError(f"no cluster form for: {statement[:80]}")
    return out


def cluster_ddl(cluster: str) -> list[tuple[int, str, list[str]]]:
    """(version, name, statements) of every migration, forwards."""
    if not re.fullmatch(r"\w+", cluster):
        raise ValueError("cluster name: letters, digits, underscore")
    return [(m.version, m.name, cluster_statements(cluster, m.up)) for m in MIGRATIONS]

"""`smsfunnel replay` on NDJSON and CSV files, as a user runs it: good records reach the broker
(numbers hashed first), bad ones are counted by reason with their first line."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from schemas.topics import SENDS
from smsfunnel.settings import PROJECT_ROOT

from .conftest import PHONE_KEY, Edge, raw_topic_bytes, read_topic

pytestmark = pytest.mark.e2e


def run_replay(edge: Edge, path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SMSFUNNEL_KAFKA_BOOTSTRAP": edge.bootstrap,
        "SMSFUNNEL_PHONE_HASH_KEY": PHONE_KEY,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "smsfunnel", "replay", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )


def send(message_id: str, **fields: object) -> dict[str, object]:
    return {
        "event_type": "send",
        "event_id": f"e-{message_id}",
        "account": "acme",
        "occurred_at": "2026-11-20T12:00:00+00:00",
        "message_id": message_id,
        "campaign": "replayed",
        "sender": "12345",
        **fields,
    }


def test_ndjson_replay_counts_rejections_and_hashes_numbers(edge: Edge, tmp_path: Path) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    lines = [
        orjson.dumps(send(ids[0], recipient_hash="a" * 64, country="US")),
        orjson.dumps(send(ids[1], to="+1 415 555 0177")),
        b"{not json",
        orjson.dumps(send(ids[2], recipient_hash="+14155550100", country="US")),
        orjson.dumps(send("m-neg", recipient_hash="b" * 64, country="US", cost="-2")),
        b"",
    ]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run_replay(edge, path)
    assert result.returncode == 0, result.stderr
    assert "6 records read, 2 acknowledged by Kafka, 4 rejected." in result.stdout, result.stdout
    assert "raw phone numbers are not accepted" in result.stdout
    assert "cost" in result.stdout and "not JSON" in result.stdout

    records = read_topic(
        edge.bootstrap,
        SENDS.name,
        lambda rs: {f"e-{ids[0]}", f"e-{ids[1]}"} <= {r["event_id"] for r in rs},
    )
    hashed = next(r for r in records if r["event_id"] == f"e-{ids[1]}")
    expected = hmac.new(PHONE_KEY.encode(), b"+14155550177", hashlib.sha256).hexdigest()
    assert (hashed["recipient_hash"], hashed["country"]) == (expected, "US")
    assert f"e-{ids[2]}" not in {r["event_id"] for r in records}
    assert b"4155550177" not in raw_topic_bytes(edge.bootstrap, SENDS.name)


def test_csv_replay(edge: Edge, tmp_path: Path) -> None:
    good = str(uuid.uuid4())
    path = tmp_path / "sends.csv"
    path.write_text(
        "event_type,event_id,account,occurred_at,message_id,campaign,sender,to,cost,"
        "provider_message_ids\n"
        f"send,e-{good},acme,2026-11-20T12:00:00Z,{good},csv,12345,+14155550166,0.01,AB|CD\n"
        "send,e-bad,acme,2026-11-20T12:00:00Z,m-bad,csv,12345,+14155550166,abc,\n"
    )
    result = run_replay(edge, path)
    assert result.returncode == 0, result.stderr
    assert "2 records read, 1 acknowledged by Kafka, 1 rejected." in result.stdout, result.stdout
    records = read_topic(
        edge.bootstrap, SENDS.name, lambda rs: f"e-{good}" in {r["event_id"] for r in rs}
    )
    row = next(r for r in records if r["event_id"] == f"e-{good}")
    assert (row["cost"], row["provider_message_ids"]) == ("0.01", ["AB", "CD"])

"""Replays NDJSON or CSV files of events into Kafka: every record validated by the schemas, the
rejected ones counted by reason (with the first line of each), the accepted ones acknowledged
by the broker before the summary is printed.

NDJSON lines are wire events (`smsfunnel generate` writes them). CSV has one column per field
and an `event_type` column; empty cells are absent fields; `provider_message_ids` are separated
by `|`. Either may give a send's recipient as a raw `to` number instead of `recipient_hash`: it
is hashed here, before anything leaves the process.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import TypeAdapter, ValidationError

from producers.kafka_producer import EventProducer
from schemas.events import Event, validation_problem
from schemas.privacy import InvalidPhoneNumber, hash_phone, timezone_of

_EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


@dataclass
class ReplaySummary:
    read: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)

    def reject(self, line: int, reason: str) -> None:
        self.rejected[reason] += 1
        self.first_line.setdefault(reason, line)


class _Position:
    """Bytes consumed so far, for the progress bar."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.bytes = f, 0

    def lines(self) -> Iterator[str]:
        for raw in self.f:
            self.bytes += len(raw)
            yield raw.decode("utf-8", errors="replace")


def _ndjson_records(lines: Iterator[str]) -> Iterator[dict[str, Any] | str]:
    for line in lines:
        if not line.strip():
            yield "empty line"
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield f"not JSON ({exc.msg})"
            continue
        yield record if isinstance(record, dict) else "not a JSON object"


def _csv_records(lines: Iterator[str]) -> Iterator[dict[str, Any] | str]:
    for row in csv.DictReader(lines):
        record: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
        if None in row:
            yield "more cells than columns"
            continue
        if "provider_message_ids" in record:
            record["provider_message_ids"] = record["provider_message_ids"].split("|")
        yield record


def _hash_recipient(record: dict[str, Any], phone_key: bytes) -> None:
    raw = record.pop("to", None)
    if raw is None:
        return
    recipient_hash, country = hash_phone(str(raw), phone_key)
    record["recipient_hash"] = recipient_hash
    record.setdefault("country", country)
    zone = timezone_of(str(raw))
    if zone and record.get("event_type") == "send":
        record.setdefault("recipient_timezone", zone)


def replay_file(
    path: Path,
    producer: EventProducer,
    phone_key: bytes,
    fmt: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "ndjson")
    if fmt not in ("csv", "ndjson"):
        raise ValueError(f"unknown format {fmt!r}: csv or ndjson")
    summary = ReplaySummary()
    with path.open("rb") as f:
        position = _Position(f)
        records = (_csv_records if fmt == "csv" else _ndjson_records)(position.lines())
        for line, record in enumerate(records, start=1 if fmt == "ndjson" else 2):
            summary.read += 1
            if on_progress is not None and summary.read % 1000 == 0:
                on_progress(position.bytes)
            if isinstance(record, str):
                summary.reject(line, record)
                continue
            try:
                _hash_recipient(record, phone_key)
                event = _EVENTS.validate_python(record)
            except InvalidPhoneNumber as exc:
                summary.reject(line, f"to: {exc}")
                continue
            except ValidationError as exc:
                summary.reject(line, validation_problem(exc))
                continue
            producer.send(event)
        producer.flush()
        if on_progress is not None:
            on_progress(position.bytes)
    summary.accepted = producer.delivered
    return summary

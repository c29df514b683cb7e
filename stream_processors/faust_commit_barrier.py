"""A commit barrier for Faust's at-least-once mode: source offsets are committed only after every
table changelog record written before the commit is acknowledged by the broker.

Faust commits like this: `await producer.flush()`, then commit the acked source offsets. Table
writes (`table[key] = value`) reach Kafka through `ProducerBuffer` (`send_soon`), and its
`flush()` is not a barrier (faust-streaming 0.15.3, transport/producer.py):
  - `flush_atmost` returns as soon as the buffer makes no progress for 0.1 s, with records
    still queued;
  - a record the buffer task has taken off the queue but not yet handed to aiokafka is counted
    neither by the buffer's size nor by aiokafka's flush that follows.
Either way the offsets of events whose state change is still in flight get committed, and a
SIGKILL in that window loses the change for good: the restarted worker rebuilds its table from a
changelog that lacks it and never replays the event (one of the ways
benchmarks/worker_kill_check.py finds messages short).

The fix keeps every buffered record's future and makes `flush()` wait until all of them are
resolved (acknowledged, or failed - a failure then crashes the worker before it commits, as
Faust does for its other producer errors). Installed once per process by the worker.

It closes this window. Whether it is the only one is not proven yet: see the README's crash
safety paragraph for the measured runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.producer import ProducerBuffer

_UNSENT = "_smsfunnel_unsent"
_FAILED = "_smsfunnel_failed"
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    original_put = ProducerBuffer.put
    original_flush = ProducerBuffer.flush

    def put(self: ProducerBuffer, fut: Any) -> None:
        unsent: set[asyncio.Future[Any]] = self.__dict__.setdefault(_UNSENT, set())
        failed: list[BaseException] = self.__dict__.setdefault(_FAILED, [])

        def settled(f: asyncio.Future[Any]) -> None:
            unsent.discard(f)
            if not f.cancelled() and f.exception() is not None:
                failed.append(f.exception())  # type: ignore[arg-type]

        unsent.add(fut)
        fut.add_done_callback(settled)
        original_put(self, fut)

    async def flush(self: ProducerBuffer) -> None:
        await original_flush(self)
        unsent: set[asyncio.Future[Any]] = self.__dict__.setdefault(_UNSENT, set())
        while unsent:
            # every record buffered so far: resolved once the broker acknowledged it
            await asyncio.wait(list(unsent), timeout=1.0)
        failed: list[BaseException] = self.__dict__.setdefault(_FAILED, [])
        if failed:
            # a changelog record the broker refused: no commit may pass it
            raise failed.pop(0)

    ProducerBuffer.put = put  # type: ignore[method-assign]
    ProducerBuffer.flush = flush  # type: ignore[method-assign]
    _installed = True


def stalled_partitions(consumer: Any) -> list[dict[str, Any]]:
    """Partitions whose committed offset cannot move although records after it were processed:
    Faust commits only a run of acked offsets that starts right after the committed one
    (`Consumer._new_offset`), so one record that is never acked there freezes the partition's
    commits for good (seen after kill -9 and restart: the records were processed, the commit
    never moved; faust-streaming#166 family). Reads Faust's private bookkeeping on purpose:
    nothing public exposes it."""
    stalled = []
    committed_by_tp = getattr(consumer, "_committed_offset", {})
    acked_by_tp = getattr(consumer, "_acked", {})
    read_by_tp = getattr(consumer, "_read_offset", {})
    for tp, acked in list(acked_by_tp.items()):
        committed = committed_by_tp.get(tp)
        if acked and committed and min(acked) - committed > 1:
            stalled.append(
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "committed": committed,
                    "lowest_acked": min(acked),
                    "acked": len(acked),
                    "read_offset": read_by_tp.get(tp),
                }
            )
    return stalled

"""A commit barrier for Faust's at-least-once mode: source offsets are committed only after every
table changelog record written before the commit is acknowledged by the broker. Also the other
workarounds of Faust's commit path: deduplicated acked offsets (`install`) and the watch for
partitions that stop progressing (`ProgressWatch`).

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
import logging
from collections.abc import Collection
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.producer import ProducerBuffer
from faust.types import TP

log = logging.getLogger(__name__)

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

    original_new_offset = Consumer._new_offset

    def new_offset(self: Consumer, tp: TP) -> int | None:
        """The offset to commit for `tp`, or None. Faust's rule with three faults removed:
        - its acked list can hold an offset twice (seen after every graceful restart on the
          partitions of a topic the worker both writes and reads: [10, 11, 11, 12, 12, ...]);
          its run of consecutive offsets then ends at the first repeat, and the partition
          commits one offset per commit interval. Offsets are a set here.
        - it lets one missing offset through: `_committed_offset` is the next offset to read,
          yet its gap test is `min(acked) - committed > 1`, so with the record at `committed`
          never acked it commits past it (and skips the test when committed is 0).
        - it fills jumps in the read offsets (`_add_gap`) as if acked. On these topics
          (never compacted, never transactional) offsets are contiguous: a jump means records
          Faust fetched and dropped (`getmany` skips partitions it does not count as active),
          not records that do not exist. Committing over them would lose them.
        A partition held back by a missing offset is re-read by ProgressWatch."""
        acked = self._acked.get(tp)
        if not acked:
            return None
        committed = self._committed_offset.get(tp)
        self._gap.pop(tp, None)
        acked[:] = sorted({o for o in acked if committed is None or o >= committed})
        if not acked or (committed is not None and acked[0] > committed):
            return None
        result: int | None = original_new_offset(self, tp)
        return result

    ProducerBuffer.put = put  # type: ignore[method-assign]
    ProducerBuffer.flush = flush  # type: ignore[method-assign]
    Consumer._new_offset = new_offset  # type: ignore[method-assign]
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


class ProgressWatch:
    """Finds input partitions that have records waiting but make no progress at all.

    Seen here after a graceful worker restart (tests/e2e/test_event_time.py): the new worker
    processes most partitions, but on one or two the group's committed offset stays below the
    end offset and nothing more is processed or committed, with no error and the agents idle
    (py-spy: all threads in select). Faust runs its streams before its seek to the committed
    offsets (faust-streaming#216), drops fetched records of partitions it does not count as
    active (`Consumer.getmany`), and its own offset bookkeeping can be empty at that point, so
    this watch reads the group's commits and the log ends from Kafka instead, and what was
    handled from the agents. Same family as faust-streaming#166/#175/#640.

    A partition is stuck when, on two checks in a row, its end offset is beyond the group's
    committed offset and neither that offset nor the last offset the agents handled moved. The
    remedy is a seek to the committed offset (Faust's `seek` also resets its read offset): the
    records are read again, repeats are dropped by the idempotent stages, nothing is skipped.
    """

    def __init__(self, topics: Collection[str]) -> None:
        self.topics = set(topics)
        self.previous: dict[TP, tuple[int, int | None]] = {}

    def stuck(
        self,
        positions: dict[tuple[str, int], tuple[int, int]],
        handled: dict[tuple[str, int], int],
        assigned: Collection[TP],
    ) -> list[tuple[TP, int, dict[str, Any]]]:
        """positions: (topic, partition) -> (committed offset, end offset), from Kafka (the
        log start when the group never committed);
        handled: (topic, partition) -> last offset an agent handled."""
        now: dict[TP, tuple[int, int | None]] = {}
        out = []
        for tp in assigned:
            if tp.topic not in self.topics or (tp.topic, tp.partition) not in positions:
                continue
            committed, end = positions[(tp.topic, tp.partition)]
            now[tp] = (committed, handled.get((tp.topic, tp.partition)))
            if end <= committed:
                continue
            if self.previous.get(tp) == now[tp]:
                detail = {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "committed": committed,
                    "end_offset": end,
                    "handled": now[tp][1],
                }
                out.append((tp, committed, detail))
        self.previous = now
        return out


async def seek_on_consumer_thread(consumer: Any, tp: TP, offset: int) -> bool:
    """Seek `tp` to `offset` on the thread that runs aiokafka; True when it was sought.

    Faust's `Consumer.seek` calls aiokafka's `seek` from the caller's thread while aiokafka's
    fetcher runs on Faust's consumer thread: the seek drops the partition's buffered records
    while `Fetcher.fetched_records` iterates them, which killed the worker with
    `KeyError: TopicPartition(...)` in `fetched_records` and crashed Faust's Fetcher service.
    Faust's `seek_wait` runs the seek through `call_thread` on the consumer's own loop and
    resets Faust's read offset as `seek` does. A partition revoked since the watch looked is
    not ours to seek: skipped (its next owner reads from the group's commit)."""
    if tp not in consumer.assignment():
        return False
    try:
        await consumer._thread.seek_wait({tp: offset})
    except Exception as exc:  # noqa: BLE001 - e.g. revoked in between: look again next time
        log.warning("could not seek %s to %d: %r", tp, offset, exc)
        return False
    return True

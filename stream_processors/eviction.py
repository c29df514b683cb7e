"""When the join may forget a message: event-time watermarks and the eviction schedule. Pure.

Invariant: a message's state is evicted only when the watermark of its partition has passed
its hold time (message_state.hold_until: the horizon, send + two windows) by more than the
allowed lateness. So every event whose time is inside the horizon and that arrives no more
than the allowed lateness behind the newest event of its partition still finds the state; one
that comes later finds a closed marker and is written out as late (`window_closed`), never
folded and never silently dropped. The marker keeps the horizon, so an event past it is still
called `after_window` (and one of an orphan still `orphan`), as it would have been had the state
not been evicted yet: the late table, like the rows, does not depend on arrival order within
the allowed lateness. The marker is forgotten after `marker_retention`; an event
after that is held as an orphan (no send) and written out when that state is evicted.

Watermark of a partition = the newest event time seen on it (all join inputs of one partition
number share it), but no later than the newest event of any input that still has unprocessed
records (PartitionClock.observe), and never ahead of the wall clock by more than
MAX_FUTURE_SKEW, so one event stamped in the year 2099 cannot evict everything. It only moves
forward. A partition that
receives no events keeps its state: eviction is driven by event time alone.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import orjson

MAX_FUTURE_SKEW = timedelta(minutes=5)
WATERMARK_KEY_PREFIX = b"\x00watermark\x1f"  # table key of a partition's persisted watermark


@dataclass
class PartitionClock:
    watermark: datetime | None = None
    persisted: datetime | None = None  # what the table last stored
    latest: dict[str, datetime] = field(default_factory=dict)  # newest event time per input

    def observe(
        self,
        topic: str,
        event_time: datetime,
        now: datetime,
        lagging: Collection[str] = (),
    ) -> bool:
        """Advance with an event read from `topic`; True when the watermark moved.

        One partition number is fed by several topics (sends, receipts, clicks, ...) that the engine
        reads in no particular interleaving: while the sends of a backlog are still unread, the
        clicks of the same hours may already be processed. So, as Flink does for an operator
        with several inputs, the watermark is the smallest of the inputs' newest event times -
        counting only the inputs that still have unprocessed records (`lagging`); an input that
        is caught up cannot hold time back, and one that lags but has delivered nothing yet
        holds it where it is."""
        t = min(event_time, now + MAX_FUTURE_SKEW)
        if topic not in self.latest or t > self.latest[topic]:
            self.latest[topic] = t
        candidate = max(self.latest.values())
        for name in lagging:
            if name not in self.latest:
                return False
            candidate = min(candidate, self.latest[name])
        if self.watermark is None or candidate > self.watermark:
            self.watermark = candidate
            return True
        return False

    def should_persist(self, every: timedelta = timedelta(minutes=1)) -> bool:
        """Persisting each step would double the changelog writes; a restored watermark that is
        up to `every` behind only delays eviction, never makes it early."""
        if self.watermark is None:
            return False
        return self.persisted is None or self.watermark - self.persisted >= every


class ClosingState(Protocol):
    """A stage's state as `EventTimeEviction.orphan_step` sees it."""

    closing: tuple[str, int] | None

    def to_bytes(self) -> bytes: ...


def watermark_key(partition: int) -> bytes:
    return WATERMARK_KEY_PREFIX + str(partition).encode()


@dataclass(frozen=True)
class ClosedMarker:
    """What is left of an evicted message: enough to call a later event late, not orphan."""

    hold_until: datetime  # the horizon, unless an orphan
    forget_after: datetime  # watermark after which the marker itself goes
    orphan: bool
    partition: int
    campaign: str = ""
    message_id: str = ""  # the resolver's markers: the message a provider id belonged to

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "closed": self.hold_until.isoformat(),
                "forget": self.forget_after.isoformat(),
                "orphan": self.orphan,
                "p": self.partition,
                "c": self.campaign,
                "m": self.message_id,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> ClosedMarker:
        d = orjson.loads(raw)
        return cls(
            datetime.fromisoformat(d["closed"]),
            datetime.fromisoformat(d["forget"]),
            d["orphan"],
            d["p"],
            d.get("c", ""),
            d.get("m", ""),
        )


def is_marker(raw: bytes) -> bool:
    return raw.startswith(b'{"closed":')


def due(hold_until: datetime, lateness: timedelta) -> datetime:
    """Watermark beyond which a state held until `hold_until` is evicted."""
    return hold_until + lateness


@dataclass
class EvictionSchedule:
    """Per partition, a heap of (due watermark, key). An entry is a reminder, not a verdict:
    the state is read again when it comes due (a later send or a moved horizon re-schedules
    it), so stale and repeated entries are harmless. In memory only; rebuilt from the table
    after every recovery."""

    heaps: dict[int, list[tuple[datetime, bytes]]] = field(default_factory=dict)

    def schedule(self, partition: int, at: datetime, key: bytes) -> None:
        heapq.heappush(self.heaps.setdefault(partition, []), (at, key))

    def pop_due(self, partition: int, watermark: datetime) -> list[bytes]:
        heap = self.heaps.get(partition)
        out: list[bytes] = []
        while heap and heap[0][0] < watermark:
            out.append(heapq.heappop(heap)[1])
        return out

    def pending(self) -> int:
        return sum(len(h) for h in self.heaps.values())

    def of(self, partition: int) -> int:
        return len(self.heaps.get(partition, ()))

    def clear(self, partition: int | None = None) -> None:
        if partition is None:
            self.heaps.clear()
        else:
            self.heaps.pop(partition, None)


@dataclass
class EventTimeEviction:
    """What a keyed stage needs to forget state on event time: a clock per partition, the
    schedule, and the wait for durability. Shared by the join (message_join.py) and the
    resolver (resolver_join.py); each decides what evicting one key means.

    Durability: a replay after a crash re-sends a key's outputs from its state, and an evicted
    state has none. So a key is evicted only once the input offset of its last change is below
    the group's committed offset (`durable`: (topic, partition) -> committed offset, kept
    current by the caller, who then calls `durable_advanced`; None: every change counts as
    durable). Until then it waits, and is tried again at its partition's next event after the
    committed offsets moved (a table write needs an event of that partition).
    """

    table: MutableMapping[bytes, bytes]
    now: Callable[[], datetime]
    durable: Mapping[tuple[str, int], int] | None = None
    clocks: dict[int, PartitionClock] = field(default_factory=dict)
    schedule: EvictionSchedule = field(default_factory=EvictionSchedule)
    waiting: dict[int, set[bytes]] = field(default_factory=dict)
    retry: set[int] = field(default_factory=set)
    # orphans found closing at a recovery whose late records may not have reached Kafka:
    # key -> (partition, the closing step), until that step is known to be committed
    unsure: dict[bytes, tuple[int, tuple[str, int]]] = field(default_factory=dict)

    def clear(self, partition: int | None = None) -> None:
        """Forget the schedule of `partition` (None: of every partition)."""
        self.schedule.clear(partition)
        if partition is None:
            self.waiting.clear()
            self.retry.clear()
            self.unsure.clear()
            return
        self.waiting.pop(partition, None)
        self.retry.discard(partition)
        for key in [k for k, (p, _) in self.unsure.items() if p == partition]:
            del self.unsure[key]

    def rebuild(
        self,
        due_of: Callable[[bytes], tuple[int, datetime, tuple[str, int] | None] | None],
        partition: int | None = None,
    ) -> None:
        """After every recovery (start, rebalance), from what the table now holds (`partition`:
        a table that holds that partition only, whose schedule alone is replaced): watermarks
        from their persisted values (a clock already ahead in memory keeps its value), markers
        scheduled at their forget time, every other state at `due_of(raw)` -> (partition, due,
        closing), None for a state that is never due. A closing orphan whose step is not known
        to be committed is `unsure`: its late records are written again (`orphan_step`)."""
        self.clear(partition)
        for key, raw in self.table.items():
            if self.restore_watermark(key, raw):
                continue
            if is_marker(raw):
                marker = ClosedMarker.from_bytes(raw)
                self.schedule.schedule(marker.partition, marker.forget_after, key)
                continue
            found = due_of(raw)
            if found is not None:
                partition, at, closing = found
                self.schedule.schedule(partition, at, key)
                if closing is not None and not self.is_durable(closing, partition):
                    self.unsure[key] = (partition, closing)

    def orphan_step(
        self,
        partition: int,
        key: bytes,
        state: ClosingState,
        source: tuple[str, int] | None,
    ) -> tuple[bool, bool]:
        """An orphan came due and its last change is durable: (write its late records now,
        replace it by its closed marker now). When it writes and does not close yet, the state
        is stored with `closing = source`.

        Invariant: an orphan's state is replaced by its marker only once the step that wrote
        its late records is committed - the engine flushes a step's output before committing it,
        so the records are then on Kafka. (Needed only where state can outlive its outputs:
        under Quix Streams a checkpoint commits both together, so the worker passes no
        `durable` and both happen at once.) Replacing it in the writing step itself could leave the
        marker on the changelog and the records lost in a crash, and nothing would write them
        again. So: step one writes them and records itself in the state (`closing`, which the
        caller stores); the marker comes at a later step, once step one is committed. A
        recovery that finds a closing orphan not known to be committed writes its records
        again (repeats are harmless: the late table is keyed by event id). Without commit
        tracking (no `durable`, or no source), both happen at once, as before."""
        if state.closing is None or self.unsure.pop(key, None) is not None:
            if self.durable is None or source is None:
                return True, True
            state.closing = source
            self.table[key] = state.to_bytes()
            self.wait(partition, key)
            return True, False
        if self.is_durable(state.closing, partition):
            return False, True
        self.wait(partition, key)
        return False, False

    def expire_marker(self, partition: int, key: bytes, raw: bytes, watermark: datetime) -> bool:
        """A marker that came due: deleted once the watermark is past its forget time (True),
        else looked at again then."""
        marker = ClosedMarker.from_bytes(raw)
        if watermark > marker.forget_after:
            del self.table[key]
            return True
        self.schedule.schedule(partition, marker.forget_after, key)
        return False

    def restore_watermark(self, key: bytes, raw: bytes) -> bool:
        """After a recovery: True if `key` is a persisted watermark (restored into its clock,
        unless the clock in memory is already ahead)."""
        if not key.startswith(WATERMARK_KEY_PREFIX):
            return False
        partition = int(key[len(WATERMARK_KEY_PREFIX) :])
        stored = datetime.fromisoformat(raw.decode())
        clock = self.clocks.setdefault(partition, PartitionClock())
        if clock.watermark is None or stored > clock.watermark:
            clock.watermark = clock.persisted = stored
        return True

    def scheduled(self, partition: int) -> int:
        """Schedule entries of one partition."""
        return self.schedule.of(partition)

    def watermark(self, partition: int) -> datetime | None:
        clock = self.clocks.get(partition)
        return clock.watermark if clock else None

    def pending(self) -> int:
        return self.schedule.pending() + sum(len(keys) for keys in self.waiting.values())

    def durable_advanced(self) -> None:
        """The committed offsets moved: waiting keys are tried again, and an unsure orphan
        whose closing step is now committed is sure (its records are on Kafka; the rebuild
        runs before the worker has read the commits, so most are settled here)."""
        self.retry.update(self.waiting)
        for key, (partition, closing) in list(self.unsure.items()):
            if self.is_durable(closing, partition):
                del self.unsure[key]

    def is_durable(self, changed_at: tuple[str, int] | None, partition: int) -> bool:
        if self.durable is None or changed_at is None:
            return True
        topic, offset = changed_at
        committed = self.durable.get((topic, partition))
        return committed is not None and offset < committed

    def wait(self, partition: int, key: bytes) -> None:
        self.waiting.setdefault(partition, set()).add(key)

    def advance(
        self, partition: int, topic: str, event_time: datetime, lagging: Collection[str]
    ) -> tuple[datetime | None, list[bytes]]:
        """Move the partition's clock with one event; (watermark, keys to look at now)."""
        clock = self.clocks.setdefault(partition, PartitionClock())
        if clock.observe(topic, event_time, self.now(), lagging):
            assert clock.watermark is not None
            if clock.should_persist():
                self.table[watermark_key(partition)] = clock.watermark.isoformat().encode()
                clock.persisted = clock.watermark
        return self.due(partition)

    def due(self, partition: int) -> tuple[datetime | None, list[bytes]]:
        """(watermark, keys to look at now) without moving the clock."""
        clock = self.clocks.get(partition)
        if clock is None or clock.watermark is None:
            return None, []
        # On every event, not only when the watermark moves: an entry scheduled after the
        # watermark passed its due time (a schedule rebuilt after a rebalance, a state written
        # late) goes at the partition's next event instead of waiting for newer time.
        keys = self.schedule.pop_due(partition, clock.watermark)
        if partition in self.retry:
            self.retry.discard(partition)
            keys += self.waiting.pop(partition, set())
        return clock.watermark, keys

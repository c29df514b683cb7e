"""The checkpoint's outputs: a subsequence of what was added, every anonymous record and the
last record of each identity, in order; superseded lazy values are never built."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream_processors.checkpoint_outputs import CheckpointOutputs

records = st.lists(
    st.tuples(
        st.sampled_from(["rows", "snapshots"]),
        st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
    ),
    max_size=40,
)


def expected(added: list[tuple[str, int | None, bytes]]) -> list[bytes]:
    """From the end: keep a record unless a later one of its (topic, identity) was kept."""
    seen: set[tuple[str, int]] = set()
    kept = []
    for topic, identity, value in reversed(added):
        if identity is not None:
            if (topic, identity) in seen:
                continue
            seen.add((topic, identity))
        kept.append(value)
    return kept[::-1]


@given(records)
def test_drain_keeps_the_last_of_each_identity_in_order(spec: list[tuple[str, int | None]]) -> None:
    outputs = CheckpointOutputs()
    added = [(topic, identity, f"{n}".encode()) for n, (topic, identity) in enumerate(spec)]
    for topic, identity, value in added:
        outputs.add(topic, b"k", value, identity)
    assert [v for _, _, v in outputs.drain()] == expected(added)
    assert outputs.drain() == []  # a drain starts the next checkpoint empty


def test_only_the_last_lazy_value_of_an_identity_is_built() -> None:
    built: list[int] = []

    def make(n: int):  # type: ignore[no-untyped-def]
        def build() -> bytes:
            built.append(n)
            return f"v{n}".encode()

        return build

    outputs = CheckpointOutputs()
    for n in range(3):
        outputs.add("rows", b"m1", make(n), ("acme", "m1"))
    outputs.add("late", b"m1", b"late-record")
    assert outputs.drain() == [("rows", b"m1", b"v2"), ("late", b"m1", b"late-record")]
    assert built == [2]


def test_clear_drops_what_was_added() -> None:
    outputs = CheckpointOutputs()
    outputs.add("rows", b"m1", b"v", "m1")
    outputs.clear()
    assert outputs.drain() == []

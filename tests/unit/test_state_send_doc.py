"""A decoded message state writes its send back in the form it was read (MessageState.send_doc),
which equals the one encoded from scratch, over every state a generated campaign leaves; a send
put in its place is written instead."""

from __future__ import annotations

import dataclasses
import datetime as dt

from producers.workload import generate_campaign
from schemas.events import MessageEventBase, event_to_json
from stream_processors.eviction import WATERMARK_KEY_PREFIX, is_marker
from stream_processors.message_join import MessageJoin
from stream_processors.message_state import MessageState

FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def play() -> dict[bytes, bytes]:
    table: dict[bytes, bytes] = {}
    join = MessageJoin(table, dt.timedelta(days=10_000), dt.timedelta(days=30), lambda: FAR_FUTURE)
    for event in generate_campaign(300, seed=11).events:
        if isinstance(event, MessageEventBase):
            join.process(0, event, event_to_json(event))
    return table


def test_a_decoded_state_is_written_back_as_one_encoded_from_scratch() -> None:
    table = play()
    states = [
        MessageState.from_bytes(raw)
        for key, raw in table.items()
        if not key.startswith(WATERMARK_KEY_PREFIX) and not is_marker(raw)
    ]
    assert sum(s.send is not None for s in states) >= 290
    for state in states:
        assert state.to_bytes() == dataclasses.replace(state, send_doc=None).to_bytes()
    # a send put in place of the decoded one is written, not the stored form
    state = next(s for s in states if s.send is not None)
    assert state.send is not None
    state.send = state.send.model_copy(update={"campaign": "replaced"})
    assert MessageState.from_bytes(state.to_bytes()).send == state.send

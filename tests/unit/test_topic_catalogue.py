"""The join is only correct if its inputs are co-partitioned: check the catalogue says so."""

from __future__ import annotations

import typing

from schemas import events
from schemas.topics import (
    ALL_TOPICS,
    DEAD_LETTERS,
    FUNNEL_ROWS,
    JOIN_INPUTS,
    TOPIC_FOR_EVENT_TYPE,
    partitions_for,
)


def test_every_join_input_is_keyed_by_message_id_and_copartitioned() -> None:
    for spec in JOIN_INPUTS:
        assert spec.key == "message_id"
        assert spec.copartitioned
        assert partitions_for(spec, 12) == 12


def test_every_event_type_has_exactly_one_input_topic() -> None:
    union = typing.get_args(typing.get_args(events.Event)[0])
    event_types = {cls.model_fields["event_type"].default for cls in union}
    assert set(TOPIC_FOR_EVENT_TYPE) == event_types
    assert set(TOPIC_FOR_EVENT_TYPE.values()) == set(JOIN_INPUTS)


def test_names_are_unique_and_outputs_are_catalogued() -> None:
    names = [spec.name for spec in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert FUNNEL_ROWS in ALL_TOPICS and DEAD_LETTERS in ALL_TOPICS

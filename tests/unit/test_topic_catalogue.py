"""The join is only correct if its inputs are co-partitioned: check the catalogue says so."""

from __future__ import annotations

import typing

from schemas import events
from schemas.topics import (
    ALL_TOPICS,
    ATTRIBUTION_INPUTS,
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


def test_attribution_inputs_are_keyed_by_subscriber_and_copartitioned() -> None:
    for spec in ATTRIBUTION_INPUTS:
        assert spec.key == "subscriber" and spec.copartitioned


def _event_types(union: object) -> dict[str, type]:
    classes = typing.get_args(typing.get_args(union)[0])
    return {cls.model_fields["event_type"].default: cls for cls in classes}


def test_every_event_type_has_exactly_one_input_topic_keyed_as_it_says() -> None:
    all_types = _event_types(events.Event)
    assert set(TOPIC_FOR_EVENT_TYPE) == set(all_types)
    message_types = _event_types(events.MessageEvent)
    subscriber_types = _event_types(events.SubscriberEvent)
    assert message_types.keys() | subscriber_types.keys() | {"provider_receipt"} == all_types.keys()
    assert TOPIC_FOR_EVENT_TYPE["provider_receipt"].key == "provider reference"
    assert {TOPIC_FOR_EVENT_TYPE[t] for t in message_types} == set(JOIN_INPUTS)
    assert {TOPIC_FOR_EVENT_TYPE[t].key for t in subscriber_types} == {"subscriber"}


def test_names_are_unique_and_outputs_are_catalogued() -> None:
    names = [spec.name for spec in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert FUNNEL_ROWS in ALL_TOPICS and DEAD_LETTERS in ALL_TOPICS

"""The engine's floor for pipeline_bench.py: a Quix Streams app that reads the given topics and
does nothing with each record (values left as bytes), committing every 0.5 s.

    engine_noop.py BOOTSTRAP GROUP STATE_DIR TOPIC [TOPIC ...]
"""

from __future__ import annotations

import sys

from quixstreams import Application


def main() -> None:
    bootstrap, group, state_dir, *topics = sys.argv[1:]
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=0.5,
        state_dir=state_dir,
        auto_create_topics=False,
        loglevel="WARNING",
    )
    for name in topics:
        topic = app.topic(name, key_deserializer="bytes", value_deserializer="bytes")
        app.dataframe(topic).update(lambda value: None)
    app.run()


if __name__ == "__main__":
    main()

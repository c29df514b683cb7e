"""ClickHouse schema, as versioned migrations (forwards and backwards).

The same DDL runs on the embedded engine (chdb) and on a single ClickHouse server. Tables are
non-replicated, so insert deduplication needs `non_replicated_deduplication_window` (0 = off by
default); a cluster variant swaps the engines for Replicated* and adds Distributed tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: tuple[str, ...]
    down: tuple[str, ...]


DEDUP = "non_replicated_deduplication_window = 1000"
TS = "DateTime64(6, 'UTC')"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "funnel rows, hourly aggregates, dead letters",
        up=(
            f"""
            CREATE TABLE IF NOT EXISTS funnel_rows (
                account LowCardinality(String),
                message_id String,
                version UInt32 COMMENT 'distinct events folded in; highest = most complete',
                has_send Bool COMMENT 'false: events seen for a message whose send is not',
                campaign LowCardinality(String),
                variant LowCardinality(String),
                segment LowCardinality(String),
                sender LowCardinality(String),
                country LowCardinality(String),
                carrier LowCardinality(String),
                sent_at Nullable({TS}),
                send_hour DateTime('UTC') COMMENT 'cohort hour of the send (epoch if no send)',
                parts UInt8,
                cost Decimal(38, 10),
                cost_currency LowCardinality(String),
                delivery_status LowCardinality(String) COMMENT 'canonical; empty: no receipt',
                delivery_status_at Nullable({TS}),
                receipts UInt16,
                clicks UInt32 COMMENT 'distinct click events',
                first_click_at Nullable({TS}),
                conversions UInt32,
                revenue Map(String, Decimal(38, 10)) COMMENT 'by currency',
                first_event_at {TS},
                last_event_at {TS},
                ingested_at {TS} DEFAULT now64(6)
            )
            ENGINE = ReplacingMergeTree(version)
            ORDER BY (account, message_id)
            SETTINGS {DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS funnel_hourly (
                account LowCardinality(String),
                campaign LowCardinality(String),
                variant LowCardinality(String),
                segment LowCardinality(String),
                send_hour DateTime('UTC'),
                sent UInt64 COMMENT 'messages attempted',
                delivered UInt64,
                undelivered UInt64,
                expired UInt64,
                rejected UInt64 COMMENT 'dropped before the handset network',
                unknown UInt64,
                pending UInt64 COMMENT 'no final receipt yet',
                clicks UInt64 COMMENT 'distinct click events',
                clicked_messages UInt64 COMMENT 'messages with at least one click',
                converting_messages UInt64,
                conversions UInt64,
                revenue Map(String, Decimal(38, 10)),
                cost Map(String, Decimal(38, 10)),
                computed_at {TS}
            )
            ENGINE = ReplacingMergeTree(computed_at)
            ORDER BY (account, campaign, variant, segment, send_hour)
            """,
            f"""
            CREATE TABLE IF NOT EXISTS dead_letters (
                stage LowCardinality(String),
                source_topic LowCardinality(String),
                source_partition UInt32,
                source_offset UInt64,
                key_b64 String,
                payload_b64 String,
                reason String,
                failed_at {TS}
            )
            ENGINE = ReplacingMergeTree
            ORDER BY (stage, source_topic, source_partition, source_offset)
            SETTINGS {DEDUP}
            """,
        ),
        down=(
            "DROP TABLE IF EXISTS dead_letters",
            "DROP TABLE IF EXISTS funnel_hourly",
            "DROP TABLE IF EXISTS funnel_rows",
        ),
    ),
    Migration(
        2,
        "full funnel: human clicks, landings, engagements, causes; attribution; responses",
        up=(
            """
            ALTER TABLE funnel_rows
                ADD COLUMN IF NOT EXISTS recipient_hash String
                    COMMENT 'keyed HMAC of the number, never the number' AFTER sender,
                ADD COLUMN IF NOT EXISTS failure_cause LowCardinality(String)
                    AFTER delivery_status_at,
                ADD COLUMN IF NOT EXISTS human_clicks UInt32
                    COMMENT 'clicks less previews, scanners, HEAD and on-delivery fetches'
                    AFTER clicks,
                ADD COLUMN IF NOT EXISTS first_human_click_at Nullable(DateTime64(6, 'UTC'))
                    AFTER first_click_at,
                ADD COLUMN IF NOT EXISTS landings UInt32 AFTER first_human_click_at,
                ADD COLUMN IF NOT EXISTS engagements UInt32 AFTER landings,
                ADD COLUMN IF NOT EXISTS discarded_conversions UInt32
                    COMMENT 'repeats of an order id or of a (click id, name)' AFTER conversions
            """,
            """
            ALTER TABLE funnel_hourly
                ADD COLUMN IF NOT EXISTS human_clicks UInt64 AFTER clicks,
                ADD COLUMN IF NOT EXISTS landings UInt64 AFTER clicked_messages,
                ADD COLUMN IF NOT EXISTS engagements UInt64 AFTER landings,
                COMMENT COLUMN clicked_messages 'messages with at least one human click'
            """,
            f"""
            CREATE TABLE IF NOT EXISTS attribution_credits (
                account LowCardinality(String),
                recipient_hash String,
                order_id String,
                model LowCardinality(String),
                version UInt64 COMMENT 'subscriber state version; highest is current',
                conversion_event_id String,
                source_message_id String COMMENT 'empty for subscriber-only conversions',
                name LowCardinality(String),
                converted_at {TS},
                amount Decimal(38, 10),
                currency LowCardinality(String),
                touch_ids Array(String),
                touch_kinds Array(LowCardinality(String)),
                message_ids Array(String),
                campaigns Array(LowCardinality(String)),
                touched_at Array({TS}),
                weights Array(Decimal(38, 20)) COMMENT 'sum to exactly 1, or empty: unattributed'
            )
            ENGINE = ReplacingMergeTree(version)
            ORDER BY (account, recipient_hash, order_id, model)
            SETTINGS {DEDUP}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS message_responses (
                account LowCardinality(String),
                recipient_hash String,
                message_id String COMMENT 'empty: no earlier delivery from that sender',
                sender LowCardinality(String),
                version UInt64,
                opt_outs UInt32,
                first_opt_out_at Nullable({TS}),
                opt_ins UInt32,
                help_requests UInt32,
                replies UInt32,
                first_response_at Nullable({TS})
            )
            ENGINE = ReplacingMergeTree(version)
            ORDER BY (account, recipient_hash, message_id, sender)
            SETTINGS {DEDUP}
            """,
        ),
        down=(
            "DROP TABLE IF EXISTS message_responses",
            "DROP TABLE IF EXISTS attribution_credits",
            "ALTER TABLE funnel_hourly DROP COLUMN IF EXISTS human_clicks, "
            "DROP COLUMN IF EXISTS landings, DROP COLUMN IF EXISTS engagements",
            "ALTER TABLE funnel_rows DROP COLUMN IF EXISTS recipient_hash, "
            "DROP COLUMN IF EXISTS failure_cause, DROP COLUMN IF EXISTS human_clicks, "
            "DROP COLUMN IF EXISTS first_human_click_at, DROP COLUMN IF EXISTS landings, "
            "DROP COLUMN IF EXISTS engagements, DROP COLUMN IF EXISTS discarded_conversions",
        ),
    ),
)

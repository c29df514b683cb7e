"""Creates or updates the catalogue's topics on a broker, idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from schemas.topics import ALL_TOPICS, partitions_for
from smsfunnel.kafka_config import admin_futures_without_gc


class PartitionMismatch(RuntimeError):
    pass


@dataclass
class ProvisionResult:
    created: list[str]
    updated: list[str]


def provision_topics(
    bootstrap: str,
    partitions: int,
    app_id: str,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> ProvisionResult:
    """Every catalogue topic. The worker's state changelogs are Quix Streams' own: it creates
    them at start with the partition count of their input topics (`app_id` is kept for callers
    that name the worker group)."""
    specs = ALL_TOPICS
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    existing = admin.list_topics(timeout=timeout).topics
    created, updated = [], []
    to_create = []
    for spec in specs:
        wanted = partitions_for(spec, partitions)
        if spec.name in existing:
            have = len(existing[spec.name].partitions)
            if have != wanted:
                # Changing it would move keys between partitions and break the join's
                # co-partitioning with its table state: a planned migration, never automatic.
                raise PartitionMismatch(
                    f"{spec.name} has {have} partitions, the catalogue wants {wanted}"
                )
            continue
        to_create.append(NewTopic(spec.name, wanted, replication_factor, config=spec.config()))
    if to_create:
        with admin_futures_without_gc():
            for name, future in admin.create_topics(to_create, request_timeout=timeout).items():
                future.result()
                created.append(name)
    # Bring retention and cleanup policy of existing topics to the catalogue's values.
    resources = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            spec.name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in spec.config().items()
            ],
        )
        for spec in specs
        if spec.name in existing
    ]
    if resources:
        with admin_futures_without_gc():
            for resource, future in admin.incremental_alter_configs(resources).items():
                future.result()
                updated.append(resource.name)
    return ProvisionResult(created, updated)

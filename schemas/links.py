"""Tracked links: what the redirector needs to turn a link id into a destination.

A platform team registers each destination once (per campaign link) and gets a link id; every
message then carries a signed token naming (link id, message id), see producers/tracking_links.py.
The registry travels on a compacted topic keyed by link id, so the redirector rebuilds it on
start and follows it while it runs.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Annotated

import orjson
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from schemas.events import Id, UtcDatetime

LinkId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{4,32}$")]


class LinkRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    link_id: LinkId
    account: Id
    destination: AnyHttpUrl
    expires_at: UtcDatetime | None = None
    registered_at: UtcDatetime

    @cached_property
    def destination_url(self) -> str:
        return str(self.destination)  # pydantic rebuilds the string on every str()

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

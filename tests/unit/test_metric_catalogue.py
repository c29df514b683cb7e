"""docs/metrics.md's table lists every metric the services register, each once, with the
service and type it is registered with; and nothing else."""

from __future__ import annotations

import re
from types import ModuleType

from prometheus_client.metrics import MetricWrapperBase

from smsfunnel.settings import PROJECT_ROOT
from tests.registered_metrics import CATALOGUES

SERVICE = {
    "producers.metrics": "receivers",
    "producers.redirector_metrics": "redirector",
    "stream_processors.metrics": "worker",
    "sinks.metrics": "sink",
}


def registered(module: ModuleType) -> dict[str, str]:
    out = {}
    for obj in vars(module).values():
        if isinstance(obj, MetricWrapperBase):
            name = obj._name + ("_total" if obj._type == "counter" else "")  # noqa: SLF001
            out[name] = obj._type  # noqa: SLF001
    return out


def test_the_table_is_the_registry() -> None:
    text = (PROJECT_ROOT / "docs" / "metrics.md").read_text()
    rows = re.findall(r"^\| `(smsfunnel_[a-z_]+)` \| (\w+) \| (\w+) \|", text, re.MULTILINE)
    documented = [(name, service, kind) for name, service, kind in rows]
    assert len(documented) == len({name for name, _, _ in documented}), "a metric twice"
    expected = {
        (name, SERVICE[m.__name__], kind)
        for m in CATALOGUES
        for name, kind in registered(m).items()
    }
    assert set(documented) == expected

"""The Grafana dashboard (infra/grafana/smsfunnel-dashboard.json) reads only what exists: every
Prometheus panel's query is valid PromQL (promtool parses it as a recording rule) and names
metrics the services register; every ClickHouse panel's SQL runs on the migrated schema (the
real engine, embedded), so each view and column it names is there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sinks.clickhouse import connect
from sinks.migrations.runner import migrate
from smsfunnel.settings import PROJECT_ROOT
from tests.registered_metrics import registered_metric_names

pytestmark = pytest.mark.e2e
DASHBOARD = PROJECT_ROOT / "infra" / "grafana" / "smsfunnel-dashboard.json"


def targets(kind: str) -> list[dict[str, Any]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        t
        for p in panels
        if p["type"] != "row" and p["datasource"]["type"] == kind
        for t in p["targets"]
    ]


def test_every_prometheus_panel_reads_registered_metrics_with_valid_promql(tmp_path: Path) -> None:
    exprs = [t["expr"] for t in targets("prometheus")]
    assert len(exprs) >= 6
    named = {n for e in exprs for n in re.findall(r"\bsmsfunnel_\w+", e)}
    assert named <= registered_metric_names(), named - registered_metric_names()
    rules = tmp_path / "panels.yml"
    rules.write_text(
        json.dumps(
            {
                "groups": [
                    {
                        "name": "panels",
                        "rules": [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(exprs)],
                    }
                ]
            }
        )
    )
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (apt-get install --no-install-recommends prometheus)"
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_clickhouse_panel_runs_on_the_migrated_schema(tmp_path: Path) -> None:
    queries = [t["rawSql"] for t in targets("grafana-clickhouse-datasource")]
    assert len(queries) >= 4
    client = connect(f"chdb://{tmp_path / 'ch'}")
    try:
        migrate(client)
        for sql in queries:
            client.query(sql)  # raises on a missing view or column
    finally:
        client.close()

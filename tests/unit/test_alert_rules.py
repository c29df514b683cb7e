"""The Prometheus files of infra/prometheus pass promtool (Debian's `prometheus` package, which
.ci/run installs): the static scrape config, the one `smsfunnel observe` writes, the alert rules
and their unit tests; and every smsfunnel metric an alert reads is one a service registers."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from smsfunnel.observe import RULES, write_config
from smsfunnel.settings import Settings
from tests.registered_metrics import registered_metric_names

PROMETHEUS_DIR = RULES.parent


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is needed (apt-get install --no-install-recommends prometheus)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def test_the_static_config_and_the_rules_pass_promtool() -> None:
    checked = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = promtool("check", "rules", str(RULES))
    assert rules.returncode == 0 and "SUCCESS" in rules.stdout, rules.stdout + rules.stderr


def test_the_alerts_fire_as_their_unit_tests_say() -> None:
    tested = promtool("test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml"))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_the_config_observe_writes_passes_promtool(tmp_path: Path) -> None:
    settings = Settings(worker_metrics_port=19101, sink_http_port=19102)
    config = write_config(settings, tmp_path)
    checked = promtool("check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "127.0.0.1:19101" in config.read_text() and "127.0.0.1:19102" in config.read_text()


def test_every_metric_an_alert_reads_is_registered_by_a_service() -> None:
    named = set(re.findall(r"\bsmsfunnel_\w+", RULES.read_text()))
    assert named and named <= registered_metric_names(), named - registered_metric_names()

"""`smsfunnel observe`: Debian's Prometheus (`apt-get install prometheus`) scraping the local
stack, with the alert rules of infra/prometheus/alerts.yml. The scrape configuration is built
from the settings, so it names the ports the services really use; infra/prometheus/prometheus.yml
is the same for the default ports."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from smsfunnel.settings import PROJECT_ROOT, Settings

RULES = PROJECT_ROOT / "infra" / "prometheus" / "alerts.yml"
JOBS = ("worker", "sink", "ingest", "redirector")


def targets(settings: Settings) -> dict[str, tuple[int, str]]:
    """job -> (port, metrics path) of each service."""
    return {
        "worker": (settings.worker_metrics_port, "/metrics"),
        "sink": (settings.sink_http_port, "/metrics"),
        "ingest": (settings.ingest_http_port, "/metrics/"),
        "redirector": (settings.redirector_port, "/metrics"),
    }


def scrape_config(
    settings: Settings, interval: str = "15s", jobs: tuple[str, ...] = JOBS
) -> dict[str, object]:
    ports = targets(settings)
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [RULES.name],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": ports[job][1],
                "static_configs": [{"targets": [f"127.0.0.1:{ports[job][0]}"]}],
            }
            for job in jobs
        ],
    }


def write_config(
    settings: Settings, directory: Path, interval: str = "15s", jobs: tuple[str, ...] = JOBS
) -> Path:
    """prometheus.yml (JSON is YAML) and the alert rules beside it, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(RULES, directory / RULES.name)
    path = directory / "prometheus.yml"
    path.write_text(json.dumps(scrape_config(settings, interval, jobs), indent=2) + "\n")
    return path


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise FileNotFoundError(
            "prometheus is not installed: `apt-get install --no-install-recommends prometheus` "
            "(Debian's package; .ci/run installs it for the tests)"
        )
    return found


def start_prometheus(config: Path, data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Prometheus on 127.0.0.1:port with its data in data_dir, output to `log`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

"""Starting and stopping the pipeline's services as separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from smsfunnel.settings import Settings


def settings_env(settings: Settings, bootstrap: str) -> dict[str, str]:
    """Environment that hands a child process exactly these settings."""
    env = dict(os.environ)
    env.update(
        {
            "SMSFUNNEL_STATE_DIR": str(settings.state_dir),
            "SMSFUNNEL_KAFKA_BOOTSTRAP": bootstrap,
            "SMSFUNNEL_CLICKHOUSE_DSN": settings.effective_clickhouse_dsn,
            "SMSFUNNEL_PARTITIONS": str(settings.partitions),
            "SMSFUNNEL_WORKER_ID": settings.worker_id,
            "SMSFUNNEL_TABLE_STORE": settings.table_store,
            "SMSFUNNEL_WORKER_SESSION_TIMEOUT": str(settings.worker_session_timeout),
            "SMSFUNNEL_WORKER_METRICS_PORT": str(settings.worker_metrics_port),
            "SMSFUNNEL_SINK_GROUP": settings.sink_group,
            "SMSFUNNEL_SINK_HTTP_PORT": str(settings.sink_http_port),
            "SMSFUNNEL_SINK_BATCH_ROWS": str(settings.sink_batch_rows),
            "SMSFUNNEL_SINK_BATCH_SECONDS": str(settings.sink_batch_seconds),
            "SMSFUNNEL_PHONE_HASH_KEY": settings.phone_hash_key.get_secret_value(),
        }
    )
    if settings.sink_instance_id:
        env["SMSFUNNEL_SINK_INSTANCE_ID"] = settings.sink_instance_id
    return env


def spawn_service(name: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    """Run `smsfunnel <name>` (worker or sink) in its own process, output to log_dir/name.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "smsfunnel", name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop_service(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (graceful: the sink flushes and commits), SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode

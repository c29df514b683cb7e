"""Starting and stopping the pipeline's services as separate processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from smsfunnel.settings import Settings


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # per-account secrets, revealed for the child only
        return json.dumps(
            {
                k: {f: _env_value(getattr(v, f)) for f in type(v).model_fields}
                for k, v in value.items()
            }
        )
    return str(value)


def settings_env(settings: Settings, bootstrap: str) -> dict[str, str]:
    """Environment that hands a child process exactly these settings (every field, so a new
    setting cannot be forgotten here)."""
    env = dict(os.environ)
    for name in Settings.model_fields:
        key = f"SMSFUNNEL_{name.upper()}"
        value = getattr(settings, name)
        if value is None:
            env.pop(key, None)
        else:
            env[key] = _env_value(value)
    env["SMSFUNNEL_KAFKA_BOOTSTRAP"] = bootstrap
    env["SMSFUNNEL_CLICKHOUSE_DSN"] = settings.effective_clickhouse_dsn
    return env


def spawn_service(
    name: str, env: dict[str, str], log_dir: Path, log_name: str | None = None
) -> subprocess.Popen[bytes]:
    """Run `smsfunnel <name>` (worker, sink, ingest, redirector) in its own process, output to
    log_dir/<log_name or name>.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{log_name or name}.log"
    with open(log_path, "ab") as log:  # the child keeps its own descriptor
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

"""Where the receivers and the redirectors listen: loopback unless told otherwise, and on the
address SMSFUNNEL_INGEST_HOST / SMSFUNNEL_REDIRECTOR_HOST name. 127.0.0.2 stands for "another
interface": on Linux all of 127/8 reaches the loopback device, so a service bound to 127.0.0.1
refuses 127.0.0.2 and one bound to 127.0.0.2 refuses 127.0.0.1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from infra.topics import provision_topics
from smsfunnel.processes import settings_env, spawn_service, stop_service

from .conftest import Edge, edge_settings, wait_http

pytestmark = pytest.mark.e2e


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_edge_listens_on_loopback_by_default(edge: Edge) -> None:
    ingest, redirector = edge.settings.ingest_http_port, edge.settings.redirector_port
    assert (edge.settings.ingest_host, edge.settings.redirector_host) == ("127.0.0.1",) * 2
    assert not refused("127.0.0.1", ingest) and not refused("127.0.0.1", redirector)
    assert refused("127.0.0.2", ingest) and refused("127.0.0.2", redirector)


@pytest.mark.parametrize("impl", ["go", "python"])
def test_each_service_listens_where_its_setting_says(kafka: str, tmp_path: Path, impl: str) -> None:
    settings = edge_settings(
        kafka, tmp_path, ingest_host="127.0.0.2", redirector_host="127.0.0.2", redirector_impl=impl
    )
    provision_topics(kafka, settings.partitions, settings.worker_id)  # the redirector needs links
    env = settings_env(settings, kafka)
    procs = [spawn_service(name, env, tmp_path / "logs") for name in ("ingest", "redirector")]

    def alive() -> None:
        for p in procs:
            assert p.poll() is None, f"a service died; logs in {tmp_path / 'logs'}"

    try:
        for port in (settings.ingest_http_port, settings.redirector_port):
            wait_http(f"http://127.0.0.2:{port}/health", 60, alive)
            assert refused("127.0.0.1", port)
    finally:
        for p in procs:
            stop_service(p)

"""A one-node Apache Kafka 4 (KRaft) broker run from Maven Central jars with the machine's Java.

Layout under its directory (git-ignored):
  lib/            the jars (`install` resolves them with Maven from infra/kafka/pom.xml)
  data/           log.dirs, formatted once with kafka.tools.StorageTool
  logs/           server.log (log4j2) and the JVM's stdout/stderr
  server.properties, broker.json (pid and ports of the running broker)

Ports are chosen free at the first start and kept on every later one (a restart waits for them
to be released, so running clients find the broker again), so two checkouts (or a test run
beside a demo) never collide. Static `controller.quorum.voters` is used rather
than `--standalone`: the voter endpoint then comes from config, not from the formatted log, so a
restart on different ports still works.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parent
POM = INFRA_DIR / "kafka" / "pom.xml"
LOG4J2 = INFRA_DIR / "kafka" / "log4j2.xml"
log = logging.getLogger(__name__)


class KafkaError(RuntimeError):
    pass


_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A port free now, for a server started a moment later. Not the kernel's pick (port 0):
    that comes from the ephemeral range, from which every outgoing connection takes its local
    port too, and a client connection took one between the pick and the sink's bind in CI
    ("Address already in use"). So a port below that range, not handed out before here."""
    low, high = _ephemeral_range()
    pool = range(10_000, low) if low > 11_000 else range(high + 1, 65_536)
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.choice(pool)
        if port not in _HANDED_OUT and port_is_free(port):
            _HANDED_OUT.add(port)
            return port
    raise OSError("no free port outside the ephemeral range")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # The broker binds with SO_REUSEADDR, so a port in TIME_WAIT after a crash is usable.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def ports_free_within(ports: tuple[int, ...], timeout: float) -> bool:
    """True once every port can be bound, waiting up to `timeout` seconds. A SIGKILLed JVM
    holds its listening sockets until its last thread has exited, which is some time after its
    main thread already shows as a zombie (pid_alive says dead)."""
    deadline = time.monotonic() + timeout
    while not all(port_is_free(p) for p in ports):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class BrokerState:
    pid: int
    broker_port: int
    controller_port: int
    cluster_id: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.broker_port}"


class LocalKafka:
    def __init__(
        self, root: Path, heap: str = "768m", lib: Path | None = None, port_wait: float = 30.0
    ) -> None:
        self.root = root
        self.heap = heap
        # how long a restart waits for its previous ports (clients know the broker by them)
        self.port_wait = port_wait
        # The jars can be shared (tests start throwaway brokers on one installed copy).
        self.lib = lib or root / "lib"
        self.data = root / "data"
        self.logs = root / "logs"
        self.state_file = root / "broker.json"
        self.root.mkdir(parents=True, exist_ok=True)

    # ---- install -------------------------------------------------------------------------
    def _pom_digest(self) -> str:
        return hashlib.sha256(POM.read_bytes()).hexdigest()

    def installed(self) -> bool:
        marker = self.lib / ".pom-sha256"
        return marker.exists() and marker.read_text().strip() == self._pom_digest()

    def install(self) -> None:
        """Resolve the broker's jars from Maven Central (once per pom version)."""
        if self.installed():
            return
        if shutil.which("mvn") is None:
            raise KafkaError("Maven (mvn) is needed to fetch the Kafka jars; install it first.")
        if self.lib.exists():
            shutil.rmtree(self.lib)
        self.lib.mkdir(parents=True)
        cmd = [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={self.lib}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise KafkaError(f"mvn failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        (self.lib / ".pom-sha256").write_text(self._pom_digest())

    # ---- state ---------------------------------------------------------------------------
    def _read_state(self) -> BrokerState | None:
        try:
            return BrokerState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def running(self) -> BrokerState | None:
        state = self._read_state()
        if state and pid_alive(state.pid):
            return state
        return None

    def address(self) -> str | None:
        state = self.running()
        return state.address if state else None

    # ---- start/stop ----------------------------------------------------------------------
    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if not java:
            raise KafkaError("Java 17+ is needed to run the local Kafka broker.")
        return java

    def _run_java(self, main: str, *args: str, log_name: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            self._java(),
            "-Xmx256m",
            "-cp",
            f"{self.lib}/*",
            f"-Dlog4j2.configurationFile={LOG4J2}",
            f"-Dkafka.logs.dir={self.logs}",
            main,
            *args,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        (self.logs / log_name).write_text(result.stdout + result.stderr)
        return result

    def _write_config(self, broker_port: int, controller_port: int) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "1",
            # One node: internal topics must not ask for replicas that cannot exist, or
            # consumer offsets and transactions never become available.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "min.insync.replicas": "1",
            "default.replication.factor": "1",
            "group.initial.rebalance.delay.ms": "0",
            # After a SIGKILL the controller (same process) still holds the dead incarnation's
            # registration, and the new one waits until that session expires before it serves:
            # 9 s by default, most of a restart after a kill (measured 14 s, against 4 s after
            # a clean stop). The heartbeats never leave this process.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
            # Topics come from the catalogue (smsfunnel topics provision) or are declared by
            # Faust; a typo must fail loudly, not create a stray topic.
            "auto.create.topics.enable": "false",
            "log.segment.bytes": str(64 * 1024 * 1024),
        }
        path = self.root / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def start(self, timeout: float = 90.0) -> BrokerState:
        """Start (or find running) the broker and wait until it answers metadata requests."""
        self.install()
        running = self.running()
        if running:
            self.wait_ready(running.address, timeout)
            return running
        self.logs.mkdir(parents=True, exist_ok=True)
        previous = self._read_state()
        cluster_id = previous.cluster_id if previous else None
        if previous and ports_free_within(
            (previous.broker_port, previous.controller_port), self.port_wait
        ):
            broker_port, controller_port = previous.broker_port, previous.controller_port
        else:
            if previous:
                log.warning(
                    "ports %d/%d still taken after %.0f s: the broker moves to new ports, and "
                    "clients started with the old address lose it",
                    previous.broker_port,
                    previous.controller_port,
                    self.port_wait,
                )
            broker_port, controller_port = free_port(), free_port()
            while controller_port == broker_port:
                controller_port = free_port()
        config = self._write_config(broker_port, controller_port)
        if not (self.data / "meta.properties").exists():
            cluster_id = self._format(config)
        if cluster_id is None:
            cluster_id = self._cluster_id_from_meta()
        # The child keeps its own descriptor of the log; ours closes with the block.
        with open(self.logs / "broker.out", "ab") as out:
            proc = subprocess.Popen(
                [
                    self._java(),
                    f"-Xmx{self.heap}",
                    "-Xms128m",
                    "-XX:+UseG1GC",
                    "-cp",
                    f"{self.lib}/*",
                    f"-Dlog4j2.configurationFile={LOG4J2}",
                    f"-Dkafka.logs.dir={self.logs}",
                    "kafka.Kafka",
                    str(config),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI that started it; stopped by `kafka stop`
            )
        state = BrokerState(proc.pid, broker_port, controller_port, cluster_id)
        self.state_file.write_text(json.dumps(state.__dict__))
        try:
            self.wait_ready(state.address, timeout, proc=proc)
        except KafkaError:
            self.stop()
            raise
        return state

    def _format(self, config: Path) -> str:
        if self.data.exists():
            shutil.rmtree(self.data)
        cluster_id = self._random_cluster_id()
        result = self._run_java(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(config),
            "--ignore-formatted",
            log_name="format.log",
        )
        if result.returncode != 0:
            raise KafkaError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
        return cluster_id

    @staticmethod
    def _random_cluster_id() -> str:
        import base64

        # URL-safe base64 may begin with "-", which the storage tool's argument parser takes
        # for an option; such an id failed `format` about one start in 32.
        while True:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cluster_id.startswith("-"):
                return cluster_id

    def _cluster_id_from_meta(self) -> str:
        for line in (self.data / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
        raise KafkaError("meta.properties has no cluster.id")

    def wait_ready(
        self, address: str, timeout: float, proc: subprocess.Popen[bytes] | None = None
    ) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise KafkaError(
                    f"broker exited with {proc.returncode}; see {self.logs / 'broker.out'}"
                )
            try:
                metadata = admin.list_topics(timeout=2)
                if metadata.brokers:
                    return
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                last_error = exc
            time.sleep(0.2)
        raise KafkaError(f"broker at {address} not ready after {timeout}s: {last_error}")

    def stop(self, timeout: float = 30.0) -> None:
        state = self._read_state()
        if not state or not pid_alive(state.pid):
            return
        try:
            os.killpg(state.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(state.pid):
            time.sleep(0.1)
        if pid_alive(state.pid):
            os.killpg(state.pid, signal.SIGKILL)
            while pid_alive(state.pid):
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the next start must cope."""
        state = self._read_state()
        if state and pid_alive(state.pid):
            os.killpg(state.pid, signal.SIGKILL)
            while pid_alive(state.pid):
                time.sleep(0.05)

    def wipe(self) -> None:
        self.stop()
        for path in (self.data, self.logs, self.state_file, self.root / "server.properties"):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()

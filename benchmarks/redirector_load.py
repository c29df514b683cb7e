"""Benchmark (not a test): the click redirector under load, beside nginx answering a fixed 302
on the same machine in the same run.

Starts a throwaway broker, registers one link, starts `smsfunnel redirector` and an nginx whose
only job is `return 302 <fixed URL>`, then measures each with the same load tools:
  - wrk at fixed concurrency (throughput: redirects/s, and its latency percentiles);
  - hey at a fixed rate of 1,000 requests/s (p50 / p99 latency at that rate).
Finally it counts the click records on Kafka against the redirects the redirector answered.
The load tool runs on the same cores as the server: figures compare the two servers under the
same conditions, not absolute capacity.

    apt-get install nginx-light wrk hey      # Debian packages
    PYTHONPATH=. .venv/bin/python benchmarks/redirector_load.py [--workers 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from confluent_kafka import Consumer, TopicPartition

from infra.local_kafka import LocalKafka, free_port
from infra.topics import provision_topics
from producers.kafka_producer import EventProducer
from producers.tracking_links import sign_token
from schemas.links import LinkRegistration
from schemas.topics import CLICKS, LINKS
from smsfunnel.processes import settings_env, spawn_service, stop_service
from smsfunnel.settings import PROJECT_ROOT, Settings

LIB = PROJECT_ROOT / ".smsfunnel" / "kafka" / "lib"
DESTINATION = "https://shop.example/sale?utm_source=sms&utm_campaign=bench"
NGINX_CONF = """
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 302 "{destination}&smsclid=fixed.AAAAAAAA"; }}
  }}
}}
"""


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, follow_redirects=False, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


LOAD_CPU: list[str] = []  # taskset prefix for the load tools, set by --pin


def pin_tree(pid: int, cpu: str) -> None:
    """Pin a running process and all its threads (and its children's) to one CPU."""
    for child in [
        pid,
        *map(
            int,
            subprocess.run(
                ["pgrep", "-P", str(pid)], capture_output=True, text=True
            ).stdout.split(),
        ),
    ]:
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(child)], capture_output=True)


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [*LOAD_CPU, "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)", out, re.MULTILINE)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            figures[f"p{pct}_ms"] = (
                value / 1000 if unit == "us" else value * (1000 if unit == "s" else 1)
            )
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    figures["errors"] = float(non2xx.group(1)) if non2xx else 0.0
    figures["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return figures


def hey_fixed_rate(url: str, seconds: int, rate: int) -> dict[str, float]:
    workers = 20
    out = subprocess.run(
        [
            "hey",
            "-z",
            f"{seconds}s",
            "-c",
            str(workers),
            "-q",
            str(rate / workers),
            "-disable-redirects",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"{pct}%% in ([\d.]+) secs".replace("%%", "%"), out)
        if m:
            figures[f"p{pct}_ms"] = float(m.group(1)) * 1000
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    figures["requests"] = float(sum(int(v) for v in codes.values()))
    figures["non_302"] = float(sum(int(v) for k, v in codes.items() if k != "302"))
    return figures


def count_clicks(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-count", "log_level": 3})
    partitions = consumer.list_topics(CLICKS.name, timeout=10).topics[CLICKS.name].partitions
    total = 0
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(CLICKS.name, p), 10)
        total += high - low
    consumer.close()
    return total


def clicks_counter(redirector_url: str) -> int:
    text = urllib.request.urlopen(redirector_url + "/metrics", timeout=5).read().decode()
    m = re.search(r'smsfunnel_redirector_clicks_total\{outcome="redirected"\} ([\d.e+]+)', text)
    return int(float(m.group(1))) if m else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1, help="redirector and nginx processes")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--linger-ms", type=int, default=None, help="redirector_linger_ms")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="servers (redirector or nginx) on CPU 0; load tools and the broker on CPU 1",
    )
    args = parser.parse_args()
    for tool in ("nginx", "wrk", "hey"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: apt-get install nginx-light wrk hey")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = LocalKafka(root / "kafka", heap="512m", lib=LIB)
        state = broker.start()
        bootstrap = state.address
        if args.pin:
            LOAD_CPU.extend(["taskset", "-c", "1"])
            pin_tree(state.pid, "1")
        port = free_port()
        settings = Settings(
            state_dir=root / "state",
            kafka_bootstrap=bootstrap,
            redirector_port=port,
            redirector_workers=args.workers,
            redirector_base_url=f"http://127.0.0.1:{port}",
        )
        provision_topics(bootstrap, settings.partitions, settings.worker_id)
        link = LinkRegistration(
            link_id="benchLink",
            account="bench",
            destination=DESTINATION,
            registered_at=datetime.now(UTC),
        )
        producer = EventProducer(bootstrap)
        producer.send_raw(LINKS.name, link.link_id.encode(), link.to_json())
        producer.flush()
        token = sign_token(
            settings.link_signing_key.get_secret_value().encode(),
            "bench",
            link.link_id,
            str(uuid.uuid4()),
        )
        redirector = spawn_service("redirector", settings_env(settings, bootstrap), root / "logs")
        nginx_port = free_port()
        (root / "nginx").mkdir()
        conf = root / "nginx" / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                workers=args.workers, dir=root / "nginx", port=nginx_port, destination=DESTINATION
            )
        )
        nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.DEVNULL
        )
        try:
            ours = f"http://127.0.0.1:{port}/{token}"
            theirs = f"http://127.0.0.1:{nginx_port}/{token}"
            wait_http(f"http://127.0.0.1:{port}/health")
            wait_http(theirs)
            if args.pin:  # after start-up: uvicorn's workers and librdkafka's threads exist now
                pin_tree(redirector.pid, "0")
                pin_tree(nginx.pid, "0")
            location = httpx.get(ours, follow_redirects=False).headers["location"]
            assert location.startswith(DESTINATION + "&smsclid="), location

            results = {}
            for name, url in (("redirector", ours), ("nginx", theirs)):
                wrk(url, 2, args.connections)  # warm-up
                results[name] = {
                    "wrk": wrk(url, args.seconds, args.connections),
                    "hey": hey_fixed_rate(url, args.seconds, args.rate),
                }
            time.sleep(1)  # let librdkafka's last linger window go out before counting
            redirected = clicks_counter(f"http://127.0.0.1:{port}") if args.workers == 1 else None
            recorded = count_clicks(bootstrap)
        finally:
            stop_service(redirector)
            nginx.terminate()
            nginx.wait()
            broker.stop()

    r, n = results["redirector"], results["nginx"]
    print(
        f"processes: {args.workers} redirector / {args.workers} nginx; "
        f"{'servers on CPU 0, load tools and broker on CPU 1; ' if args.pin else ''}"
        f"redirector linger {settings.redirector_linger_ms} ms; "
        f"wrk -t2 -c{args.connections} -d{args.seconds}s; hey at {args.rate}/s for {args.seconds}s"
    )
    print(f"{'':24}{'redirector':>12}{'nginx':>12}{'ratio':>8}")
    print(
        f"{'wrk redirects/s':24}{r['wrk']['rps']:>12,.0f}{n['wrk']['rps']:>12,.0f}"
        f"{r['wrk']['rps'] / n['wrk']['rps']:>8.1%}"
    )
    for key in ("p50_ms", "p99_ms"):
        print(
            f"{'wrk ' + key:24}{r['wrk'].get(key, float('nan')):>12.2f}"
            f"{n['wrk'].get(key, float('nan')):>12.2f}"
        )
    print(f"{'hey achieved req/s':24}{r['hey']['rps']:>12,.0f}{n['hey']['rps']:>12,.0f}")
    for key in ("p50_ms", "p99_ms"):
        print(
            f"{'hey ' + key + ' @rate':24}{r['hey'].get(key, float('nan')):>12.2f}"
            f"{n['hey'].get(key, float('nan')):>12.2f}"
        )
    print(
        f"{'non-302 answers':24}{r['wrk']['errors'] + r['hey']['non_302']:>12,.0f}"
        f"{n['wrk']['errors'] + n['hey']['non_302']:>12,.0f}"
    )
    sent = r["wrk"]["requests"] + r["hey"]["requests"]
    print(
        f"clicks on Kafka: {recorded:,} for about {sent:,.0f} measured requests "
        f"(+ warm-up and check requests)"
        + (f"; redirector counted {redirected:,} redirects" if redirected is not None else "")
    )


if __name__ == "__main__":
    main()

"""Benchmark (not a test): the click redirector under load, beside nginx answering a fixed 302
on the same machine in the same run.

Starts a throwaway broker, registers one link, starts `smsfunnel redirector` (the compiled one,
and with --impl both the Python one as well) and an nginx whose only job is
`return 302 <fixed URL>`, then measures each, one at a time, with the same load tools:
  - wrk at fixed concurrency (throughput: redirects/s, and its latency percentiles);
  - hey at a fixed rate of 1,000 requests/s (p50 / p99 latency at that rate).
Finally it counts the click records on Kafka against the redirects the redirector answered.
The load tool runs on the same cores as the server: figures compare the two servers under the
same conditions, not absolute capacity.

    apt-get install nginx-light wrk hey      # Debian packages
    make install   # builds the compiled redirector
    PYTHONPATH=. .venv/bin/python benchmarks/redirector_load.py [--impl both] [--workers 2]
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
        "--impl", choices=["go", "python", "both"], default="go", help="redirector(s) to measure"
    )
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
        impls = ["go", "python"] if args.impl == "both" else [args.impl]
        ports = {impl: free_port() for impl in impls}
        settings = Settings(
            state_dir=root / "state",
            kafka_bootstrap=bootstrap,
            redirector_workers=args.workers,
            **({"redirector_linger_ms": args.linger_ms} if args.linger_ms is not None else {}),
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
        del producer  # closed now, not after the broker has stopped (it would log refusals)
        token = sign_token(
            settings.link_signing_key.get_secret_value().encode(),
            "bench",
            link.link_id,
            str(uuid.uuid4()),
        )
        redirectors = {
            impl: spawn_service(
                "redirector",
                settings_env(
                    settings.model_copy(update={"redirector_port": port, "redirector_impl": impl}),
                    bootstrap,
                ),
                root / "logs",
                f"redirector-{impl}",
            )
            for impl, port in ports.items()
        }
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
            theirs = f"http://127.0.0.1:{nginx_port}/{token}"
            urls = {
                f"redirector-{impl}": f"http://127.0.0.1:{port}/{token}"
                for impl, port in ports.items()
            }
            for port in ports.values():
                wait_http(f"http://127.0.0.1:{port}/health")
            wait_http(theirs)
            if args.pin:  # after start-up: the servers' threads exist now
                for proc in redirectors.values():
                    pin_tree(proc.pid, "0")
                pin_tree(nginx.pid, "0")
            for url in urls.values():
                location = httpx.get(url, follow_redirects=False).headers["location"]
                assert location.startswith(DESTINATION + "&smsclid="), location

            results = {}
            for name, url in (*urls.items(), ("nginx", theirs)):
                wrk(url, 2, args.connections)  # warm-up
                results[name] = {
                    "wrk": wrk(url, args.seconds, args.connections),
                    "hey": hey_fixed_rate(url, args.seconds, args.rate),
                }
            time.sleep(1)  # let the producers' last linger window go out before counting
            redirected = (
                sum(clicks_counter(f"http://127.0.0.1:{port}") for port in ports.values())
                if args.workers == 1 or args.impl == "go"
                else None
            )
            recorded = count_clicks(bootstrap)
        finally:
            for proc in redirectors.values():
                stop_service(proc)
            nginx.terminate()
            nginx.wait()
            broker.stop()

    n = results["nginx"]
    print(
        f"processes: {args.workers} python redirector / {args.workers} nginx "
        f"(the go redirector is one process on every core); "
        f"{'servers on CPU 0, load tools and broker on CPU 1; ' if args.pin else ''}"
        f"redirector linger {settings.redirector_linger_ms} ms; "
        f"wrk -t2 -c{args.connections} -d{args.seconds}s; hey at {args.rate}/s for {args.seconds}s"
    )
    names = [*urls, "nginx"]
    print(f"{'':24}" + "".join(f"{name:>20}" for name in names))
    print(
        f"{'wrk redirects/s':24}"
        + "".join(f"{results[name]['wrk']['rps']:>20,.0f}" for name in names)
    )
    print(
        f"{'  ratio to nginx':24}"
        + "".join(f"{results[name]['wrk']['rps'] / n['wrk']['rps']:>20.1%}" for name in names)
    )
    for tool, key in (
        ("wrk", "p50_ms"),
        ("wrk", "p99_ms"),
        ("hey", "rps"),
        ("hey", "p50_ms"),
        ("hey", "p99_ms"),
    ):
        label = f"{tool} {key}" + (" @rate" if tool == "hey" else "")
        print(
            f"{label:24}"
            + "".join(f"{results[name][tool].get(key, float('nan')):>20.2f}" for name in names)
        )
    print(
        f"{'non-302 answers':24}"
        + "".join(
            f"{results[name]['wrk']['errors'] + results[name]['hey']['non_302']:>20,.0f}"
            for name in names
        )
    )
    sent = sum(results[name]["wrk"]["requests"] + results[name]["hey"]["requests"] for name in urls)
    print(
        f"clicks on Kafka: {recorded:,} for about {sent:,.0f} measured redirects "
        f"(+ warm-up and check requests)"
        + (f"; the redirectors counted {redirected:,} redirects" if redirected is not None else "")
    )


if __name__ == "__main__":
    main()

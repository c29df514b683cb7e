"""The traffic split a sending platform asks for before each batch, on data the pipeline wrote:
GET /v1/accounts/{a}/campaigns/{c}/split on the sink answers the account's api key only, with
each variant's messages as the generator sent them, its attributed conversions and revenue as
the attributed_revenue view holds them, and the Thompson split of those figures; `smsfunnel
split` prints the same shares."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from producers.kafka_producer import EventProducer
from producers.workload import generate_campaign
from sinks.creative_split import VariantFigures, split

from .conftest import SPLIT_ACCOUNT, SPLIT_KEY, Pipeline, report_cli

pytestmark = pytest.mark.e2e

ACCOUNT, KEY, CAMPAIGN = SPLIT_ACCOUNT, SPLIT_KEY, "black-friday"


def test_split_endpoint_and_command(pipeline: Pipeline) -> None:
    workload = generate_campaign(3000, seed=41, account=ACCOUNT)
    producer = EventProducer(pipeline.bootstrap)
    producer.send_many(workload.events)
    producer.flush()
    producer.close()
    pipeline.drain()
    base = f"http://127.0.0.1:{pipeline.settings.sink_http_port}"
    url = f"{base}/v1/accounts/{ACCOUNT}/campaigns/{CAMPAIGN}/split"
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url).status_code == 401
    answer = httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}).json()
    assert answer["model"] == "last_click" and answer["currency"] == "USD"

    sent = {v: t.sent for (a, c, v), t in workload.truth.items() if c == CAMPAIGN}
    assert {v: f["messages"] for v, f in answer["variants"].items()} == sent
    view = pipeline.query.rows(
        "SELECT variant, sum(attributed_conversions) AS c, sum(attributed_revenue) AS r "
        "FROM attributed_revenue WHERE account = {a:String} AND campaign = {c:String} "
        "AND model = 'last_click' AND currency = 'USD' GROUP BY variant",
        {"a": ACCOUNT, "c": CAMPAIGN},
    )
    figures = {
        r["variant"]: VariantFigures(sent[r["variant"]], round(Decimal(r["c"])), Decimal(r["r"]))
        for r in view
    }
    assert {v: Decimal(f["revenue"]) for v, f in answer["variants"].items()} == {
        v: f.revenue for v, f in figures.items()
    }
    assert all(f.messages >= 500 for f in figures.values())  # past the minimum sample
    assert answer["split"] == split(figures)
    assert sum(answer["split"].values()) == pytest.approx(1.0)

    out = report_cli(pipeline, "--account", ACCOUNT, "--campaign", CAMPAIGN, command="split").stdout
    for variant, share in answer["split"].items():
        assert f"{variant}: {share:.1%} of the next sends" in out

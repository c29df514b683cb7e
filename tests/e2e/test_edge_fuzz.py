"""Bounded fuzzing of the receivers through their own OpenAPI document (schemathesis), against
the running service and the real broker: whatever it sends, no answer is a 5xx. Requests go to
a configured account with its real credentials, so generated bodies reach the handlers instead
of stopping at a 401. The redirector has no OpenAPI document: arbitrary paths are thrown at it
directly, and each must get a 302 or a 404."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Edge

pytestmark = pytest.mark.e2e
EXAMPLES_PER_OPERATION = 30


def test_receivers_never_answer_5xx(edge: Edge) -> None:
    # schemathesis's pytest loader (`schemathesis.pytest.from_fixture`) reads Item._nodeid,
    # which pytest 9 removed (the same break as pytest-benchmark#321): its Python API is used
    # instead, one Hypothesis run per operation of the document.
    schema = schemathesis.openapi.from_url(edge.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    calls: dict[str, set[int]] = {}

    def fuzz(operation) -> None:  # type: ignore[no-untyped-def]
        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same examples on every run: a failure reproduces
            database=None,
        )
        def no_server_error(case) -> None:  # type: ignore[no-untyped-def]
            if case.path_parameters and "account" in case.path_parameters:
                case.path_parameters["account"] = "acme"
            if case.query:
                if "token" in case.query:
                    case.query["token"] = "acme-hook-token"
                if "secret" in case.query:
                    case.query["secret"] = "acme-postback-secret"
            response = case.call(
                base_url=edge.url, headers={"Authorization": "Bearer acme-api-key"}
            )
            calls.setdefault(operation.label, set()).add(response.status_code)
            assert response.status_code < 500, (
                f"{response.status_code} {response.text[:500]}\n{case.as_curl_command()}"
            )

        no_server_error()

    for operation in operations:
        fuzz(operation)
    # the fuzz reached the handlers, not only the authentication in front of them
    reached = {label for label, codes in calls.items() if codes & {200, 201, 202, 204, 422}}
    assert len(reached) >= 10, calls


@given(path=st.text(max_size=200))
@settings(
    max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_redirector_answers_any_path_with_302_or_404(edge: Edge, path: str) -> None:
    with httpx.Client(base_url=edge.redirector_url) as client:
        # percent-encoded so any text is a valid URL; the server sees it decoded
        response = client.get("/" + quote(path, safe=""), follow_redirects=False)
    assert response.status_code in (302, 404, 405), (path, response.status_code)

"""Property-based fuzzing of every route against the app's own OpenAPI schema (schemathesis),
over HTTP against the real server process (`attnserve serve`, every shipped model loaded).

Each operation gets valid and invalid generated requests; every answer must be a non-5xx that
conforms to the schema (status code, content type, headers, body), within SLOWEST_ANSWER_S,
with no stack trace or server path in it. At the end the number of
cases that ran is printed and must be at least MIN_CASES.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from attnserve.service.app import create_app
from bench.server_process import ServerProcess, serve
from tests.conftest import REPO_ROOT, cpu_settings

MIN_CASES = 5000
EXAMPLES_PER_OPERATION = 500
# A request that takes longer than this is a hang (inference on the shipped model takes ms).
SLOWEST_ANSWER_S = 5.0

CASES: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()
SERVED_MODEL = "bilstm-additive"


# Schema-valid bodies the API refuses on purpose, each with a documented 4xx: a text without
# tokens (422 empty_text), both or neither of text/texts (422: the schema cannot say "exactly
# one"), a limit set at startup (413), a /v2 binary body that is not an inference request
# (400, the Open Inference Protocol's refusal). Any 5xx, undocumented status or off-schema
# body fails.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "413", "422"]},
            "max_response_time": SLOWEST_ANSWER_S,
        }
    }
)


# The schema is the app's own (read without serving); the cases go to the server process.
schema = schemathesis.openapi.from_dict(
    create_app(cpu_settings(REPO_ROOT / "model_repository")).openapi(), config=CONFIG
)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with serve({"ATTNSERVE_MAX_TEXTS_PER_REQUEST": "8"}) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    total = sum(CASES.values())
    probes = sum(count for count in CASES.values() if count == 1)  # a wrong method: one probe
    busiest = ", ".join(f"{name} {count}" for name, count in CASES.most_common(4))
    capture = request.config.pluginmanager.getplugin("capturemanager")
    assert capture is not None
    with capture.global_and_fixture_disabled():
        print(
            f"\nfuzz: {total} cases over {len(CASES)} method/path pairs "
            f"({probes} of them wrong-method probes; most: {busiest}); "
            f"statuses {dict(sorted(STATUSES.items()))}"
        )
    assert total >= MIN_CASES, f"only {total} fuzz cases ran"
    assert STATUSES[200] > total / 20, STATUSES  # the models were loaded: real answers ran
    assert STATUSES[503] == 0, STATUSES


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_fail_or_break_its_schema(
    server: ServerProcess, case: schemathesis.Case[Any]
) -> None:
    # Every other case names the served model (and version), so that the named routes'
    # bodies are fuzzed too, not only their 404 for an unknown name.
    if case.path_parameters and sum(CASES.values()) % 2 == 0:
        case.path_parameters = case.path_parameters | {
            "name": SERVED_MODEL,
            **({"version": "1"} if "version" in case.path_parameters else {}),
        }
    response = case.call_and_validate(base_url=server.url)
    CASES[f"{case.method} {case.path}"] += 1
    STATUSES[response.status_code] += 1
    # No answer gives away the server's insides: no stack trace, no path on this machine.
    assert "Traceback" not in response.text
    assert str(REPO_ROOT) not in response.text and "site-packages" not in response.text

"""Schemathesis against both HTTP services: serve on a churn, a spam, an image (cifar) and a
textgen run, and the runs dashboard. Every built-in check is on (not_a_server_error, status code,
content type, headers and response schema conformance, positive data accepted, negative
data rejected, unsupported methods, ...); a fixed seed, a bounded number of examples per
operation and a cap of 2 instances per /explain request keep it reproducible and short.

Valid image inputs cannot be described by a JSON schema (a base64 string / raw bytes that
decode as a picture), so the fuzzer is taught to make real small PNG / JPEG files for them;
everything else it generates from the published schema alone."""

import base64
import json
from collections import Counter

import pytest
import schemathesis
from _serve_runs import image_bytes, tiny_image_run, tiny_textgen_run
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = 25  # per operation and phase
EXPLAIN_INSTANCES = 2  # at most, per /explain request (each costs ~64-256 gradient evaluations)


@st.composite
def _images(draw):
    w, h = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    return image_bytes(w, h, draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP"])), draw(st.integers(0, 9)))


schemathesis.openapi.format("byte", _images().map(lambda b: base64.b64encode(b).decode()))
schemathesis.openapi.media_type("image/png", _images())


class Counting:
    """ASGI wrapper that counts the requests an app answered, by status, and notes the paths
    it answered 200."""

    def __init__(self, app):
        self.app, self.statuses, self.ok = app, Counter(), set()

    async def __call__(self, scope, receive, send):
        async def counted(message):
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
                if message["status"] == 200:
                    self.ok.add(scope.get("path"))
            await send(message)

        await self.app(scope, receive, counted)


def _predictor_classes():
    from keras_cases.churn.predict import Predictor as Tabular
    from keras_cases.data.image_serving import ImagePredictor
    from keras_cases.text_models.predict import Predictor as Text

    return Tabular, Text, ImagePredictor


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from keras_cases import churn, cli, spam

    root = tmp_path_factory.mktemp("fuzz_runs")
    assert cli.run(churn.main, ["--quick", "-v", "0", "--out", str(root / "churn" / "a")]) == 0
    assert cli.run(spam.main, ["--quick", "-v", "0", "--model", "conv1d", "--out", str(root / "spam" / "a")]) == 0
    tiny_image_run(root / "cifar" / "a")
    tiny_textgen_run(root / "textgen" / "a")
    (root / "broken").mkdir()
    (root / "broken" / "metrics.json").write_text("{not json")  # the dashboard lists it as broken
    return root


# A body over the services' byte limit (serve.MAX_BODY, documented with the 413 response;
# JSON Schema cannot state it) is refused unread with 413, whether or not the schema allows
# its content: schemathesis is told 413 is an answer to both.
CONFIG = schemathesis.Config.from_str("""
[checks.negative_data_rejection]
expected-statuses = ["400", "404", "405", "413", "415", "422"]
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429"]
""")


@pytest.fixture(scope="module", params=["churn", "spam", "cifar", "textgen", "dashboard"])
def api(request, runs):
    from keras_cases import dashboard, serve

    # the ASGI client sends Host: testserver; the app is told it is bound to that name
    if request.param == "dashboard":
        app = dashboard.create_app(runs, host="testserver")
    else:
        with pytest.MonkeyPatch.context() as mp:  # /explain's cap, in the schema: 2 instances (not 8) keep it fast
            for predictor in _predictor_classes():
                mp.setattr(predictor, "max_explain_instances", EXPLAIN_INSTANCES, raising=False)
            app = serve.create_app(runs / request.param / "a", host="testserver")
    counting = Counting(app)
    yield schemathesis.openapi.from_asgi("/openapi.json", counting, config=CONFIG)
    # after the fuzzer is done with this service: how many requests it got (shown with -s)
    # and, besides schemathesis' own not_a_server_error check, none of them answered 5xx
    c = counting.statuses
    print(
        f"\nschemathesis on {request.param}: {sum(c.values())} requests, by status "
        f"{json.dumps(dict(sorted(c.items())))}"
    )
    assert sum(c.values()) > 20 and not any(s >= 500 for s in c), c
    if request.param in ("churn", "spam", "cifar"):  # the fuzzer's valid bodies were explained
        assert {"/predict", "/explain"} <= counting.ok, counting.ok
    if request.param == "cifar":
        assert {"/predict/image", "/explain/image"} <= counting.ok, counting.ok


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_services_survive_the_fuzzer(case):
    case.call_and_validate()

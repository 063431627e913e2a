"""Serving a saved run over real HTTP, the runs dashboard, and export."""

import html
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from conftest import QUICK_CHURN, QUICK_SPAM, ROOT, check, run_python, shared_run, subprocess_env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """A runs root holding churn/a: a copy of the session's `churn --quick` run on jax
    (conftest.shared_run, the run test_churn.py checks)."""
    import shutil

    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(shared_run(tmp_path_factory, QUICK_CHURN, "jax")[0], root / "churn" / "a")
    return root


def start(args, backend="jax"):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "keras_cases", *args, "--port", str(port)],
        env=subprocess_env(backend),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/openapi.json", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("server did not start in 90 s")


@pytest.fixture(scope="module")
def server(runs_root):
    proc, url = start(["serve", "--run", str(runs_root / "churn" / "a")])
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def spam_run(tmp_path_factory):
    """`spam --quick --model conv1d` on jax, made once per session (test_bad_input.py breaks copies of it); read only."""
    return shared_run(tmp_path_factory, QUICK_SPAM, "jax")[0]


@pytest.fixture(scope="module")
def spam_server(spam_run):
    proc, url = start(["serve", "--run", str(spam_run)])
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def example_row(url):
    return {f["name"]: f["example"] for f in httpx.get(url + "/model").json()["fields"]}


def test_health_model_and_docs(server):
    assert httpx.get(server + "/health").json() == {"status": "ok", "case": "churn"}
    info = httpx.get(server + "/model").json()
    assert info["case"] == "churn" and 0 < info["threshold"] < 1
    assert info["trained_on_backend"] == "jax" and info["params"] > 1000
    assert {"tenure", "contract", "monthly_charges"} <= {f["name"] for f in info["fields"]}
    assert "/predict" in httpx.get(server + "/openapi.json").json()["paths"]
    assert httpx.get(server + "/docs").status_code == 200


def test_predict_matches_the_saved_model(server, runs_root, tmp_path):
    row = example_row(server)
    risky = {
        **row,
        "tenure": 1,
        "contract": "Month-to-month",
        "internet_service": "Fiber optic",
        "payment_method": "Electronic check",
    }
    loyal = {**row, "tenure": 70, "contract": "Two year", "internet_service": "No"}
    r = httpx.post(server + "/predict", json={"instances": [risky, loyal]})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert preds[0]["churn_probability"] > preds[1]["churn_probability"]
    # the same rows through the predictor that `churn predict` uses give the same numbers
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([risky, loyal]))
    code = (
        "import json; from keras_cases import churn;"
        f"p = churn.load_predictor({str(runs_root / 'churn' / 'a')!r});"
        f"print(json.dumps(p.predict(json.load(open({str(rows)!r})))))"
    )
    out = check(run_python(["-c", code], backend="torch")).stdout.strip().splitlines()[-1]
    np.testing.assert_allclose(
        [p["churn_probability"] for p in json.loads(out)], [p["churn_probability"] for p in preds], rtol=1e-5
    )


def test_concurrent_requests_all_succeed(server):
    from concurrent.futures import ThreadPoolExecutor

    row = example_row(server)

    def one(i):
        with httpx.Client(timeout=60) as c:
            return c.post(server + "/predict", json={"instances": [{**row, "tenure": i}]}).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(24))) == [200] * 24


def test_bad_requests_are_4xx_with_a_message(server):
    row = example_row(server)
    missing = {k: v for k, v in row.items() if k != "tenure"}
    cases = {
        "missing field": ({"instances": [missing]}, 422, "tenure"),
        "wrong type": ({"instances": [{**row, "tenure": "long"}]}, 422, "tenure"),
        "unknown category": ({"instances": [{**row, "contract": "Weekly"}]}, 422, "contract"),
        "no instances": ({"instances": []}, 422, "instances"),
        "not a list": ({"instances": "all"}, 422, "instances"),
        "no body key": ({"rows": [row]}, 422, "instances"),
    }
    for what, (body, status, needle) in cases.items():
        r = httpx.post(server + "/predict", json=body)
        assert r.status_code == status, (what, r.status_code, r.text)
        assert needle in r.json()["detail"], (what, r.text)
    r = httpx.post(server + "/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    big = b'{"instances": [' + b",".join([json.dumps(row).encode()] * 5000) + b"]}"
    r = httpx.post(server + "/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["detail"]
    assert httpx.get(server + "/predict").status_code == 405


def test_html_page_has_a_form_for_every_field(server):
    page = httpx.get(server + "/").text
    for f in httpx.get(server + "/model").json()["fields"]:
        assert f'name="{f["name"]}"' in page
    assert "fetch(explain ? '/explain' : '/predict'" in page and 'id="explain"' in page


CHROMIUM = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def rendered_page(url, tmp_path):
    """The DOM of `url` after a headless Chromium ran its script (up to 15 s of virtual time)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("KERAS_CASES_REQUIRE_BROWSER"):
            raise AssertionError("Chromium is required here (KERAS_CASES_REQUIRE_BROWSER) but not installed")
        pytest.skip("Chromium not installed (CI installs it)")
    p = subprocess.run(
        [
            browser,
            *CHROMIUM,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert '<pre id="result">' in p.stdout, p.stderr[-2000:]
    return p.stdout


def between(text, start, end):
    assert start in text, text[-3000:]
    return text.split(start, 1)[1].split(end, 1)[0]


def test_prediction_page_in_headless_chromium(server, tmp_path):
    """A real browser loads the page, its script submits the form to /predict, and the
    prediction appears in the page."""
    result = between(rendered_page(server + "/?autorun=1", tmp_path), '<pre id="result">', "</pre>")
    assert '"churn_probability"' in result and '"churn_predicted"' in result, result


def test_explanation_page_in_headless_chromium(server, spam_server, tmp_path):
    """The page's Explain button (pressed by ?autorun=explain) posts the form to /explain and
    renders the answer: churn's features with their signed attributions, spam's text as
    highlighted tokens."""
    import re

    from keras_cases.data.text import tokenize

    # the form's example customer is the explanations' baseline: a new customer on a
    # two-year contract differs from it in two columns, which take the attribution
    dom = rendered_page(server + "/?tenure=1&contract=Two+year&autorun=explain", tmp_path / "churn")
    assert '"churn_probability"' in between(dom, '<pre id="result">', "</pre>")
    features = re.findall(
        r'<li class="(pos|neg|zero)">(\w+) <b>([+-]?[0-9.e+-]+)</b></li>', between(dom, '<ol id="features">', "</ol>")
    )
    fields = {f["name"] for f in httpx.get(server + "/model").json()["fields"]}
    assert len(features) == 10 and {name for _, name, _ in features} <= fields, features
    signs = {name: (cls, value) for cls, name, value in features}
    assert signs["tenure"][0] == "pos" and signs["tenure"][1].startswith("+"), features
    assert signs["contract"][0] == "neg" and signs["contract"][1].startswith("-"), features
    dom = rendered_page(spam_server + "/?autorun=explain", tmp_path / "spam")
    tokens = re.findall(
        r'<span class="tok" title="([+-]?[0-9.e+-]+)" data-attribution="([^"]+)"[^>]*>([^<]+)</span>', dom
    )
    text = httpx.get(spam_server + "/model").json()["fields"][0]["example"]
    assert in_order([html.unescape(t) for _, _, t in tokens], text, len(tokenize(text))), (text, tokens)
    assert any(float(a) > 0 for _, a, _ in tokens) and "background" in between(dom, '<p id="tokens">', "</p>")


def test_dashboard_lists_and_compares_runs(runs_root):
    proc, url = start(["runs", "--root", str(runs_root)])
    try:
        runs = httpx.get(url + "/api/runs").json()
        assert [r["id"] for r in runs] == ["churn/a"]
        assert runs[0]["case"] == "churn" and runs[0]["backend"] == "jax" and "roc_auc" in runs[0]["metrics"]
        index = httpx.get(url + "/").text
        assert 'href="/run/churn/a"' in index and "roc_auc" in index
        page = httpx.get(url + "/run/churn/a").text
        assert 'src="/files/churn/a/roc_pr.png"' in page
        png = httpx.get(url + "/files/churn/a/roc_pr.png")
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        assert httpx.get(url + "/compare", params=[("ids", "churn/a"), ("ids", "churn/a")]).status_code == 200
        assert httpx.get(url + "/run/nope").status_code == 404
        assert httpx.get(url + "/files/churn/a/model.keras").status_code == 404
        assert httpx.get(url + "/", headers={"Host": "evil.example"}).status_code == 400
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serving_a_missing_run_is_one_line(tmp_path):
    p = run_python(["-m", "keras_cases", "serve", "--run", str(tmp_path / "nope")], backend="jax")
    assert p.returncode == 2 and p.stderr.strip() == f"error: run directory not found: {tmp_path / 'nope'}"


@pytest.mark.parametrize(
    "fmt,via,case", [("saved_model", "jax", "churn"), ("onnx", "torch", "churn"), ("saved_model", "jax", "spam")]
)
def test_export_predicts_like_keras(runs_root, spam_run, tmp_path, fmt, via, case):
    """A churn run both ways, and a spam run, whose model has the text models' custom
    layers (export registers the case's layers before loading)."""
    out = tmp_path / ("m.onnx" if fmt == "onnx" else "sm")
    run = runs_root / "churn" / "a" if case == "churn" else spam_run
    p = check(
        run_python(["-m", "keras_cases", "export", "--run", str(run), "--format", fmt, "--out", str(out)], backend=via)
    )
    assert out.exists() and "predictions match Keras" in p.stdout


def test_load_test_script_reports_percentiles(runs_root, tmp_path):
    """benchmarks.serve_load against a real server (a smoke run; speed is not asserted)."""
    check(
        run_python(
            [
                "-m",
                "benchmarks.serve_load",
                "--run",
                str(runs_root / "churn" / "a"),
                "--requests",
                "24",
                "--out",
                str(tmp_path),
            ],
            backend="jax",
        )
    )
    res = json.loads(next(tmp_path.glob("*-serve.json")).read_text())["results"]
    for r in res.values():
        assert r["ok"] == r["requests"] and 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]


def test_dashboard_headline_reads_test_prefixed_metrics():
    from keras_cases.dashboard import headline

    assert headline({"test_accuracy": 0.8, "test_mase": 0.7, "roc_auc": 0.9, "seed": 3, "flag": True}) == {
        "roc_auc": 0.9,
        "accuracy": 0.8,
        "mase": 0.7,
    }
    assert headline({"accuracy": 0.9, "test_accuracy": 0.8})["accuracy"] == 0.9  # a plain key wins


# --- in-process: the hardening of both services (no server process needed) -------------
def client(app):
    from starlette.testclient import TestClient

    return TestClient(app, base_url="http://localhost")


@pytest.fixture(scope="module")
def churn_app(runs_root):
    from keras_cases import serve

    return serve.create_app(runs_root / "churn" / "a")


@pytest.fixture(scope="module")
def image_app(tmp_path_factory):
    from _serve_runs import tiny_image_run

    from keras_cases import serve

    return serve.create_app(tiny_image_run(tmp_path_factory.mktemp("image") / "cifar_run"))


def test_every_operation_declares_its_4xx_bodies(churn_app, image_app):
    for app in (churn_app, image_app):
        paths = client(app).get("/openapi.json").json()["paths"]
        for path, ops in paths.items():
            for method, op in ops.items():
                for status in ("400", "413", "422"):
                    schema = op["responses"][status]["content"]["application/json"]["schema"]
                    assert "detail" in schema["required"], (path, method, status)
    assert "415" in client(image_app).get("/openapi.json").json()["paths"]["/predict/image"]["post"]["responses"]
    r = client(churn_app).post("/predict", json={"instances": [{"tenure": "long"}]})
    assert r.status_code == 422 and set(r.json()) == {"detail", "errors"} and r.json()["errors"] > 1


def test_numbers_must_be_finite_and_missing_ones_are_imputed(churn_app, runs_root):
    c = client(churn_app)
    row = {f["name"]: f["example"] for f in c.get("/model").json()["fields"]}
    for raw in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        body = json.dumps({"instances": [row]}).replace(
            f'"tenure": {json.dumps(row["tenure"])}', '"tenure": ' + raw.decode()
        )
        r = c.post("/predict", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "tenure" in r.json()["detail"], (raw, r.text)
    median = json.loads((runs_root / "churn" / "a" / "preprocessing.json").read_text())["numeric"]["tenure"]["median"]
    got = c.post(
        "/predict", json={"instances": [{**row, "tenure": None}, {**row, "tenure": median}, {k: None for k in row}]}
    )
    assert got.status_code == 200, got.text
    p = [x["churn_probability"] for x in got.json()["predictions"]]
    assert p[0] == pytest.approx(p[1], abs=1e-6) and 0 <= p[2] <= 1


def chunks(total, size=64 << 10):
    for _ in range(total // size + 1):
        yield b"x" * size


def test_body_limit_holds_for_streamed_bodies(churn_app, image_app):
    from keras_cases.serve import MAX_BODY

    r = client(churn_app).post("/predict", content=chunks(2 * MAX_BODY), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["detail"]
    r = client(image_app).post("/predict/image", content=chunks(2 * MAX_BODY), headers={"content-type": "image/png"})
    assert r.status_code == 413 and "bytes" in r.json()["detail"]


def test_images_bad_bombs_and_good(image_app):
    import base64

    from _serve_runs import CLASSES, bomb_png, image_bytes

    c = client(image_app)
    good = image_bytes(40, 30, "JPEG")
    r = c.post("/predict/image", content=good, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["predictions"][0]["class"] in CLASSES, r.text
    r = c.post("/predict", json={"instances": [{"image": base64.b64encode(image_bytes()).decode()}]})
    assert r.status_code == 200 and len(r.json()["predictions"][0]["top"]) == 3, r.text
    for what, data, needle in [
        ("truncated", good[: len(good) // 2], "not a readable"),
        ("garbage", b"\x89PNG not really", "not a readable"),
        ("bomb over PIL's limit", bomb_png(), "not a readable"),
        ("too many pixels", bomb_png(5000, 5000), "over the limit"),
    ]:
        r = c.post("/predict/image", content=data, headers={"content-type": "image/png"})
        assert r.status_code == 400 and needle in r.json()["detail"], (what, r.text)
        r = c.post("/predict", json={"instances": [{"image": base64.b64encode(data).decode()}]})
        assert r.status_code == 400 and needle in r.json()["detail"], (what, r.text)
    assert c.post("/predict/image", content=good, headers={"content-type": "text/plain"}).status_code == 415
    assert c.post("/predict", json={"instances": [{"image": "%%%"}]}).status_code == 400


def test_explain_churn_gives_the_prediction_and_every_raw_column(churn_app):
    """/explain answers what /predict does, plus one signed attribution per raw column (largest
    first) whose signs are the trained model's: a short tenure pushes towards churn, a long one
    and a two-year contract away from it (the baseline is the training medians / modes)."""
    c = client(churn_app)
    row = {f["name"]: f["example"] for f in c.get("/model").json()["fields"]}
    risky = {**row, "tenure": 1, "internet_service": "Fiber optic", "payment_method": "Electronic check"}
    loyal = {**row, "tenure": 70, "contract": "Two year"}
    body = {"instances": [risky, loyal]}
    r = c.post("/explain", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["explanations"]
    preds = c.post("/predict", json=body).json()["predictions"]
    assert [e["prediction"]["churn_predicted"] for e in out] == [p["churn_predicted"] for p in preds]
    np.testing.assert_allclose(
        [e["prediction"]["churn_probability"] for e in out], [p["churn_probability"] for p in preds], atol=1e-6
    )
    for e in out:
        items = e["explanation"]["items"]
        assert sorted(i["name"] for i in items) == sorted(row) and e["explanation"]["heatmap"] == []
        sizes = [abs(i["attribution"]) for i in items]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0
    risky_why, loyal_why = ({i["name"]: i["attribution"] for i in e["explanation"]["items"]} for e in out)
    assert risky_why["tenure"] > 0 > loyal_why["tenure"] and loyal_why["contract"] < 0, (risky_why, loyal_why)


def test_explain_caps_its_instances_and_publishes_signed_attributions(churn_app):
    from keras_cases.serve import MAX_EXPLAIN, MAX_HEATMAP

    c = client(churn_app)
    schemas = c.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["ExplainRequest"]["properties"]["instances"]["maxItems"] == MAX_EXPLAIN == 8
    assert schemas["PredictRequest"]["properties"]["instances"]["maxItems"] > MAX_EXPLAIN
    attribution = schemas["Attribution"]["properties"]["attribution"]
    assert attribution["type"] == "number" and "minimum" not in attribution and "maximum" not in attribution
    heatmap = schemas["Explanation"]["properties"]["heatmap"]
    assert heatmap["maxItems"] == heatmap["items"]["maxItems"] == MAX_HEATMAP
    assert heatmap["items"]["items"] == {"type": "number", "minimum": 0.0, "maximum": 1.0}
    row = {f["name"]: f["example"] for f in c.get("/model").json()["fields"]}
    r = c.post("/explain", json={"instances": [row] * (MAX_EXPLAIN + 1)})
    assert r.status_code == 422 and set(r.json()) == {"detail", "errors"} and "at most 8" in r.json()["detail"]
    r = c.post("/explain", json={"instances": [{**row, "tenure": t} for t in range(MAX_EXPLAIN)]})
    assert r.status_code == 200 and len(r.json()["explanations"]) == MAX_EXPLAIN
    assert c.post("/explain", json={"instances": [{**row, "tenure": "long"}]}).status_code == 422


def in_order(tokens, text, count) -> bool:
    """`count` tokens, each found in `text` after the one before (tokens keep the text's case)."""
    at = 0
    for t in tokens:
        at = text.find(t, at)
        if at < 0:
            return False
        at += len(t)
    return len(tokens) == count


def test_explain_text_attributes_every_token(spam_run):
    """A spam run's /explain: its /predict answer and one attribution per token, in text order;
    the trained model's spam words push towards spam."""
    from keras_cases import serve
    from keras_cases.data.text import tokenize

    c = client(serve.create_app(spam_run))
    texts = ["WINNER!! Claim your FREE prize now, call 09061701461", "are we still meeting for lunch tomorrow?"]
    body = {"instances": [{"text": t} for t in texts]}
    r = c.post("/explain", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["explanations"]
    preds = c.post("/predict", json=body).json()["predictions"]
    assert [e["prediction"]["label"] for e in out] == [p["label"] for p in preds] == ["spam", "ham"]
    np.testing.assert_allclose(
        [e["prediction"]["spam_probability"] for e in out], [p["spam_probability"] for p in preds], atol=1e-6
    )
    for text, e in zip(texts, out):
        assert in_order([i["name"] for i in e["explanation"]["items"]], text, len(tokenize(text)))
        assert e["explanation"]["target"] == "spam" and e["explanation"]["heatmap"] == []
    spam_why = {i["name"].lower(): i["attribution"] for i in out[0]["explanation"]["items"]}
    top = max(spam_why, key=spam_why.get)
    assert top in {"winner", "claim", "free", "prize", "call", "09061701461", "now"}, spam_why
    assert sum(spam_why.values()) > sum(i["attribution"] for i in out[1]["explanation"]["items"])


def test_explain_image_gives_a_small_heatmap(image_app):
    """An image run's /explain (base64 JSON) and /explain/image (raw bytes) agree, answer what
    /predict does, and carry a Grad-CAM heat map of at most 32 x 32 cells in [0, 1]."""
    import base64

    from _serve_runs import image_bytes

    c = client(image_app)
    data = image_bytes(40, 30, "PNG", seed=3)
    body = {"instances": [{"image": base64.b64encode(data).decode()}]}
    a = c.post("/explain", json=body)
    assert a.status_code == 200, a.text
    b = c.post("/explain/image", content=data, headers={"content-type": "image/png"})
    assert b.status_code == 200 and b.json() == a.json()
    e = a.json()["explanations"][0]
    assert e["prediction"] == c.post("/predict", json=body).json()["predictions"][0]
    heat = np.asarray(e["explanation"]["heatmap"])
    assert heat.ndim == 2 and 1 <= heat.shape[0] <= 32 and 1 <= heat.shape[1] <= 32, heat.shape
    assert heat.min() >= 0 and heat.max() <= 1 and e["explanation"]["items"] == []
    assert e["explanation"]["target"] == e["prediction"]["class"]
    r = c.post("/explain/image", content=b"\x89PNG not really", headers={"content-type": "image/png"})
    assert r.status_code == 400 and r.json()["detail"].startswith("the upload is not a readable"), r.text
    assert c.post("/explain/image", content=data, headers={"content-type": "text/plain"}).status_code == 415
    assert c.post("/explain", json={"instances": [{"image": "%%%"}]}).status_code == 400
    assert 'id="explain"' in c.get("/").text


def test_health_answers_while_a_prediction_runs(runs_root, monkeypatch):
    import threading

    from keras_cases import churn, serve

    def slow(self, instances):
        time.sleep(2)
        return [{"churn_probability": 0.5, "churn_predicted": True} for _ in instances]

    monkeypatch.setattr(churn.Predictor, "predict", slow)
    with client(serve.create_app(runs_root / "churn" / "a")) as c:
        row = {f["name"]: f["example"] for f in c.get("/model").json()["fields"]}
        done = {}
        t = threading.Thread(target=lambda: done.update(r=c.post("/predict", json={"instances": [row]})))
        t0 = time.perf_counter()
        t.start()
        time.sleep(0.3)
        h0 = time.perf_counter()
        assert c.get("/health").status_code == 200
        assert time.perf_counter() - h0 < 0.5 and t.is_alive()
        t.join()
    assert done["r"].status_code == 200 and time.perf_counter() - t0 >= 2


def test_host_header_must_name_the_bound_host(churn_app, runs_root):
    from keras_cases import dashboard, serve

    for app in (churn_app, dashboard.create_app(runs_root)):
        c = client(app)
        assert c.get("/", headers={"Host": "evil.example"}).status_code == 400
        assert c.get("/", headers={"Host": "evil.example:8000"}).status_code == 400
        for ok in ("localhost:8000", "127.0.0.1", "[::1]:8001"):
            assert c.get("/", headers={"Host": ok}).status_code == 200, ok
    lan = client(serve.create_app(runs_root / "churn" / "a", host="box.lan"))
    assert lan.get("/health", headers={"Host": "box.lan:8000"}).status_code == 200
    assert lan.get("/health", headers={"Host": "evil.example"}).status_code == 400


def _dashboard_root(tmp_path):
    """runs/ with a complete run, a running one, a broken one and one whose name needs
    escaping, and secrets beside the root that no URL may reach."""
    root = tmp_path / "runs"
    good = root / "churn" / "a"
    good.mkdir(parents=True)
    (good / "run.json").write_text(json.dumps({"case": "churn", "status": "complete"}))
    (good / "metrics.json").write_text(json.dumps({"roc_auc": 0.8, "pr_auc": float("nan"), "backend": "jax"}))
    (good / "report.md").write_text("# report\n")
    (tmp_path / "secret.json").write_text('{"password": "hunter2"}')
    (good / "leak.json").symlink_to(tmp_path / "secret.json")
    (good / "models").symlink_to(tmp_path, target_is_directory=True)
    running = root / "spam" / "b"
    running.mkdir(parents=True)
    (running / "run.json").write_text(json.dumps({"case": "spam", "status": "running"}))
    broken = root / "churn" / "broken"
    broken.mkdir()
    (broken / "metrics.json").write_text("{not json")
    odd = root / 'x"><img src=x onerror=alert(1)>'
    odd.mkdir()
    (odd / "metrics.json").write_text("{}")
    return root


def test_dashboard_serves_only_files_of_its_runs(tmp_path):
    from keras_cases import dashboard

    c = client(dashboard.create_app(_dashboard_root(tmp_path)))
    assert c.get("/files/churn/a/report.md").status_code == 200
    for url in [
        "/files/churn/a/..%2F..%2F..%2Fsecret.json",
        "/files/churn/a/%2E%2E/%2E%2E/%2E%2E/secret.json",
        "/files/churn/..%2F..%2Fsecret.json",
        "/files/churn/a/leak.json",
        "/files/churn/a/models/secret.json",
        "/run/..%2F..",
        "/run/churn/a/..%2F..%2F..",
    ]:
        r = c.get(url)
        assert r.status_code in (403, 404) and "hunter2" not in r.text, (url, r.status_code, r.text)
    assert c.get("/compare", params=[("ids", "churn/a"), ("ids", "../..")]).status_code == 404
    assert "leak.json" not in c.get("/run/churn/a").text


def test_dashboard_lists_status_and_broken_runs_and_escapes_names(tmp_path):
    from keras_cases import dashboard

    c = client(dashboard.create_app(_dashboard_root(tmp_path)))
    runs = {r["id"]: r for r in c.get("/api/runs").json()}
    assert runs["churn/a"]["status"] == "complete" and runs["churn/a"]["metrics"] == {"roc_auc": 0.8}
    assert runs["spam/b"]["status"] == "running"
    assert runs["churn/broken"]["status"] == "broken" and "not valid JSON" in runs["churn/broken"]["error"]
    index = c.get("/")
    assert index.status_code == 200 and "<img src=x" not in index.text
    assert "running" in index.text and "broken" in index.text
    odd = next(i for i in runs if "onerror" in i)
    page = c.get("/run/" + odd)
    assert page.status_code == 200 and "<img src=x" not in page.text and "&lt;img src=x" in page.text
    assert c.get("/run/churn/broken").status_code == 200


def test_generate_continues_prompts_and_bounds_its_settings(tmp_path):
    """POST /generate on a textgen run: greedy decoding is deterministic and starts where the
    prompt ends; /predict continues each instance; settings outside their bounds are 422."""
    from _serve_runs import tiny_textgen_run

    from keras_cases import serve

    c = client(serve.create_app(tiny_textgen_run(tmp_path / "textgen_run")))
    body = {"prompt": "Are you ", "length": 12, "temperature": 0}
    a, b = c.post("/generate", json=body), c.post("/generate", json={**body, "seed": 7})
    assert a.status_code == 200 and a.json()["prompt"] == "Are you "
    assert a.json()["text"] == b.json()["text"]  # greedy: the seed does not matter
    sampled = [c.post("/generate", json={"prompt": "x", "length": 30, "seed": s}).json()["text"] for s in (1, 2)]
    assert sampled[0] != sampled[1]  # an untrained model's samples differ by seed
    assert len(c.post("/generate", json={"prompt": "", "length": 5, "stop": 0}).json()["text"].encode()) <= 5 * 3
    r = c.post("/predict", json={"instances": [{"prompt": "hi"}, {"prompt": "yo"}]})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2
    assert c.post("/predict", json={"instances": [{"prompt": "hi"}] * 9}).status_code == 422  # 8 at most
    for bad in (
        {"prompt": "x", "length": 0},
        {"prompt": "x", "length": 100_000},
        {"prompt": "x", "top_p": 0},
        {"prompt": "x", "temperature": -1},
        {"prompt": "x", "top_k": 1000},
        {"prompt": "x" * 5000},
        {"length": 5},
    ):
        r = c.post("/generate", json=bad)
        assert r.status_code == 422 and "detail" in r.json(), bad
    page = c.get("/").text
    assert '<textarea name="prompt"' in page and 'id="explain"' not in page
    # a generator has no explain(): no /explain route, and none in the schema
    assert not [p for p in c.get("/openapi.json").json()["paths"] if p.startswith("/explain")]
    assert c.post("/explain", json={"instances": [{"prompt": "hi"}]}).status_code in (404, 405)

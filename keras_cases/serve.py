"""Serve a saved run over HTTP: `python -m keras_cases serve --run DIR`.

A FastAPI app (run by uvicorn) around the case's `Predictor` (the saved model, loaded with
Keras' safe_mode, plus its saved preprocessing):

- `POST /predict`  `{"instances": [ {...}, ... ]}` -> `{"predictions": [...]}`; the
  instance schema is the one the model was trained on (OpenAPI docs at `/docs`)
- `POST /predict/image` the raw bytes of one image file (image cases)
- `POST /explain` the /predict body (at most `max_explain_instances`, default 8: each costs
  64-256 gradient evaluations) -> `{"explanations": [{"prediction": ..., "explanation": {"method",
  "target", "items": [{"name", "attribution"}], "heatmap": [[...]]}}]}`: the prediction and why
  (signed attributions per raw column / per token; a Grad-CAM heat map of at most 32x32 in
  [0, 1] for images, with `POST /explain/image` for raw bytes), for predictors that have `explain`
- `POST /generate` `{"prompt": ..., "length": ..., "temperature": ..., "top_k": ..., "top_p": ...,
  "seed": ...}` -> `{"prompt", "text"}` (textgen runs)
- `GET /health`, `GET /model` (what it is, metrics, threshold, backend)
- `GET /` a small page to try a prediction by hand

The OpenAPI schema says exactly what is accepted: a request it allows is answered 200, any
other gets a 4xx with the body it declares ({"detail": ...}), never a 500: a missing field,
wrong type or non-finite number (422), an unreadable image (400), a body over MAX_BODY bytes
however it is sent (413), a Host header other than the bound host (400; see httpguard).
Predictions run on a worker thread, one at a time, so /health answers while one runs.
"""

import argparse
import html
import importlib
import math
import threading

from keras_cases import UserError, cli, httpguard
from keras_cases.runs import load_run, run_case

MAX_BODY = 1 << 20  # bytes
MAX_INSTANCES = 1000
MAX_NUMBER = 1e9  # the largest magnitude a number field accepts (keeps float32 math finite)
MAX_EXPLAIN = 8  # instances per /explain request unless the predictor says (max_explain_instances)
MAX_HEATMAP = 32  # rows and columns of an image explanation's heat map, at most


def _need_fastapi():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError("serving needs FastAPI and uvicorn: pip install 'keras-cases[serve]'")


def load_predictor(run_dir):
    from keras_cases.__main__ import CASES

    d = load_run(run_dir)
    case = run_case(d)
    if case not in {name for name, _ in CASES}:
        raise UserError(f"{d} was written by an unknown case {case!r}")
    module = importlib.import_module(f"keras_cases.{case}")
    if not hasattr(module, "load_predictor"):
        raise UserError(f"the {case} case cannot be served (it has no saved predictor)")
    return module.load_predictor(d)


def instance_model(predictor):
    """A pydantic model of one input instance, built from the fields the model was trained
    on. Strict: a number is a JSON number (finite, |x| <= MAX_NUMBER) or null (imputed with
    the training median), a choice one of the training categories or null (unknown)."""
    from typing import Literal

    from pydantic import ConfigDict, Field, create_model

    fields = {}
    for f in predictor.fields():
        if f["kind"] == "number":
            example = min(max(float(f["example"]), -MAX_NUMBER), MAX_NUMBER)
            fields[f["name"]] = (
                float | None,
                Field(..., ge=-MAX_NUMBER, le=MAX_NUMBER, allow_inf_nan=False, examples=[example]),
            )
        elif f["kind"] == "choice":
            fields[f["name"]] = (Literal[tuple(f["choices"])] | None, Field(..., examples=[f["example"]]))
        elif f["kind"] == "image":
            fields[f["name"]] = (
                str,
                Field(
                    ...,
                    min_length=1,
                    json_schema_extra={"format": "byte"},
                    description="the image file (PNG, JPEG, GIF, BMP or WebP), base64-encoded",
                ),
            )
        else:
            fields[f["name"]] = (str, Field(..., min_length=1, examples=[f["example"]]))
    config = ConfigDict(extra="ignore", strict=True, protected_namespaces=())
    return create_model(f"{predictor.case.title()}Instance", __config__=config, **fields)


def output_model(name: str, spec: dict):
    """A pydantic model of one prediction from a predictor's `outputs()`: float (a
    probability), bool, str, a tuple of names (one of them), a dict (nested), [spec] (a list)."""
    from typing import Literal

    from pydantic import ConfigDict, Field, create_model

    def kind(key, v):
        if v is float:
            return (float, Field(..., ge=0, le=1))
        if isinstance(v, tuple):
            return (Literal[v], ...)
        if isinstance(v, dict):
            return (output_model(f"{name}{key.title()}", v), ...)
        if isinstance(v, list):
            return (list[kind(key, v[0])[0]], ...)
        return (v, ...)

    config = ConfigDict(protected_namespaces=())
    return create_model(name, __config__=config, **{k: kind(k, v) for k, v in spec.items()})


def finite_json(obj):
    """`obj` with every NaN / infinity replaced by None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def explain_models(predictor, Instance, Output):
    """(request body, response) of POST /explain: the /predict body with at most
    `max_explain_instances` instances; per instance the prediction and its explanation, whose
    attributions are signed finite numbers (+: towards the target class) and whose heat map
    (images) is at most MAX_HEATMAP x MAX_HEATMAP values in [0, 1]."""
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, Field, create_model

    class Attribution(BaseModel):
        name: str = Field(..., description="a raw input column, or a token of the text as tokenized")
        attribution: float = Field(
            ..., allow_inf_nan=False, description="signed: > 0 pushes the score towards the target, < 0 away"
        )

    Row = Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(max_length=MAX_HEATMAP)]

    class Explanation(BaseModel):
        model_config = ConfigDict(protected_namespaces=())
        method: str = Field(..., description="how the attributions were computed")
        target: str = Field(..., description="the class whose score is explained")
        items: list[Attribution] = Field(
            ..., description="tabular: one per raw column, largest |attribution| first; text: one per token, in order"
        )
        heatmap: list[Row] = Field(
            ..., max_length=MAX_HEATMAP, description="images: where the model looked, rows x columns in [0, 1]"
        )

    Explained = create_model(
        f"{predictor.case.title()}Explained", prediction=(Output, ...), explanation=(Explanation, ...)
    )
    cap = getattr(predictor, "max_explain_instances", MAX_EXPLAIN)
    Body = create_model(
        "ExplainRequest",
        __config__=Instance.model_config,
        instances=(list[Instance], Field(..., min_length=1, max_length=cap)),
    )
    return Body, create_model("ExplainResponse", explanations=(list[Explained], ...))


def api_models(predictor):
    """(request body, prediction response, health response, (explain body, explain response) or
    None): the pydantic models of the API."""
    from typing import Literal

    from pydantic import Field, create_model

    Instance = instance_model(predictor)
    Body = create_model(
        "PredictRequest",
        __config__=Instance.model_config,
        instances=(
            list[Instance],
            Field(..., min_length=1, max_length=getattr(predictor, "max_instances", MAX_INSTANCES)),
        ),
    )
    Output = output_model(f"{predictor.case.title()}Prediction", predictor.outputs())
    Predictions = create_model("PredictResponse", predictions=(list[Output], ...))
    Health = create_model("Health", status=(Literal["ok"], ...), case=(str, ...))
    explaining = explain_models(predictor, Instance, Output) if hasattr(predictor, "explain") else None
    return Body, Predictions, Health, explaining


def create_app(run_dir, host: str = "127.0.0.1"):
    """The app serving `run_dir`; it answers requests whose Host header names `host`
    (or localhost); bound to every interface (0.0.0.0), any."""
    _need_fastapi()
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool

    predictor = load_predictor(run_dir)
    Body, Predictions, Health, explaining = api_models(predictor)
    info = finite_json(predictor.info())
    lock = threading.Lock()  # Keras' predict is not thread-safe (on JAX calls race on state)
    app = FastAPI(
        title=f"keras-cases: {predictor.case}",
        version="1",
        description=f"Serving {predictor.dir}",
        responses=httpguard.responses(400, 413, 422, max_body=MAX_BODY),
    )
    httpguard.install(app, host, MAX_BODY)

    @app.exception_handler(UserError)
    async def user_error(request, exc):
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=400)

    async def off_loop(fn, *args):
        """`fn(*args)` on a worker thread, one at a time: the event loop keeps answering."""

        def locked():
            with lock:
                return fn(*args)

        return await run_in_threadpool(locked)

    @app.get("/health", response_model=Health)
    async def health():
        return {"status": "ok", "case": predictor.case}

    @app.get("/model")
    async def model_info():
        from keras_cases.runtime import backend

        return finite_json({**info, "serving_backend": backend(), "fields": predictor.fields()})

    @app.post("/predict", response_model=Predictions)
    async def predict(body: Body):
        rows = [i.model_dump() for i in body.instances]
        return {"predictions": await off_loop(predictor.predict, rows)}

    if explaining:
        _explain_route(app, predictor, explaining, off_loop)
    if hasattr(predictor, "predict_bytes"):
        _image_route(app, predictor, Predictions, off_loop, explaining)
    if hasattr(predictor, "generate"):
        _generate_route(app, predictor, off_loop)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return _page(predictor, info)

    return app


def _explained(predictor, rows):
    """predictor.explain(rows), with a UserError (400) rather than a non-JSON number."""
    out = predictor.explain(rows)
    if not _all_finite(out):
        raise UserError(
            "the model gave no finite explanation for some instances (values far outside the training range?)"
        )
    return {"explanations": out}


def _all_finite(obj) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_finite(v) for v in obj)
    return True


def _explain_route(app, predictor, explaining, off_loop):
    """POST /explain: the /predict body (fewer instances), each prediction with its explanation."""
    Body, Explanations = explaining

    @app.post("/explain", response_model=Explanations)
    async def explain(body: Body):
        """Each instance's prediction and why: integrated gradients (tabular, text) or Grad-CAM
        (images). An instance costs 64-256 gradient evaluations (tabular, text), hence the smaller cap."""
        rows = [i.model_dump() for i in body.instances]
        return await off_loop(_explained, predictor, rows)


def _image_route(app, predictor, Predictions, off_loop, explaining=None):
    """POST /predict/image (and /explain/image): the raw bytes of one image file, Content-Type image/..."""
    import base64

    from fastapi import Request
    from fastapi.responses import JSONResponse

    content = {"image/*": {"schema": {"type": "string", "format": "binary"}}}
    extra = {"openapi_extra": {"requestBody": {"required": True, "content": content}}}

    async def upload(request):
        """The body's bytes, or a 415 response when it is not sent as an image."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            return JSONResponse(
                {"detail": f"send the image with Content-Type image/... (got {kind or 'none'!r})"}, status_code=415
            )
        data = await request.body()
        if not data:
            raise UserError("empty body: send the bytes of one image file")
        return data

    @app.post("/predict/image", response_model=Predictions, responses=httpguard.responses(415), **extra)
    async def predict_image(request: Request):
        """The raw bytes of one image file (curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg')."""
        data = await upload(request)
        if isinstance(data, JSONResponse):
            return data
        return {"predictions": await off_loop(predictor.predict_bytes, data)}

    if explaining is None:
        return

    @app.post("/explain/image", response_model=explaining[1], responses=httpguard.responses(415), **extra)
    async def explain_image(request: Request):
        """The raw bytes of one image file: its prediction and a Grad-CAM heat map of where the model looked."""
        data = await upload(request)
        if isinstance(data, JSONResponse):
            return data
        try:
            return await off_loop(_explained, predictor, [{"image": base64.b64encode(data).decode()}])
        except UserError as e:  # there are no "instances" here: the message names the upload
            raise UserError(str(e).removeprefix("instances.0.image: "))


def _generate_route(app, predictor, off_loop):
    """POST /generate: continue a prompt, with the sampling settings in the body (textgen)."""
    from typing import Annotated

    from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

    from keras_cases.textgen.sample import MAX_GENERATE, MAX_PROMPT

    # JSON Schema counts 77.0 as an integer; strict pydantic would not
    Integer = Annotated[int, BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)]

    class GenerateRequest(BaseModel):
        model_config = ConfigDict(extra="ignore", strict=True)
        prompt: str = Field(..., max_length=MAX_PROMPT, examples=["Are you free "])
        length: Integer = Field(100, ge=1, le=MAX_GENERATE, description="bytes to generate at most")
        temperature: float = Field(0.8, ge=0, le=5, allow_inf_nan=False, description="0: greedy")
        top_k: Integer = Field(0, ge=0, le=257, description="keep the k most likely bytes (0: all)")
        top_p: float = Field(0.95, gt=0, le=1, allow_inf_nan=False, description="nucleus mass")
        seed: Integer = Field(0, ge=0, le=2**31 - 1)

    class Generated(BaseModel):
        prompt: str
        text: str

    @app.post("/generate", response_model=Generated)
    async def generate(body: GenerateRequest):
        args = (body.prompt, body.length, body.temperature, body.top_k, body.top_p, body.seed)
        return {"prompt": body.prompt, "text": await off_loop(predictor.generate, *args)}


def _page(predictor, info) -> str:
    inputs, kinds = [], set()
    for f in predictor.fields():
        name = html.escape(f["name"])
        kinds.add(f["kind"])
        if f["kind"] == "choice":
            opts = "".join(
                f"<option{' selected' if c == f['example'] else ''}>{html.escape(str(c))}</option>"
                for c in f["choices"]
            )
            widget = f'<select name="{name}" data-kind="choice">{opts}</select>'
        elif f["kind"] == "number":
            widget = f'<input name="{name}" data-kind="number" type="number" step="any" value="{f["example"]:g}">'
        elif f["kind"] == "image":
            widget = f'<input name="{name}" data-kind="image" type="file" accept="image/*">'
        else:
            widget = f'<textarea name="{name}" data-kind="text" rows="3" cols="60">{html.escape(str(f["example"]))}</textarea>'
        inputs.append(f"<label><span>{name}</span>{widget}</label>")
    metrics = ", ".join(
        f"{html.escape(str(k))} {v:.3f}" for k, v in info.get("metrics", {}).items() if isinstance(v, (int, float))
    )
    case = html.escape(predictor.case)
    kind = "image" if "image" in kinds else "text" if "text" in kinds else "tabular"
    explain = (
        '<button type="submit" id="explain" value="explain">Explain</button>' if hasattr(predictor, "explain") else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>keras-cases: {case}</title>
<style>body{{font-family:sans-serif;max-width:52em;margin:2em auto}}label{{display:flex;gap:1em;margin:.3em 0}}
label span{{width:14em}}#result{{margin-top:1em;padding:.8em;background:#eef}}
#features li.pos b{{color:#b22}}#features li.neg b{{color:#26c}}.tok{{padding:0 .15em;border-radius:.2em}}
#result{{white-space:pre-wrap}}</style></head><body>
<h1>{case}: try a prediction</h1>
<p>Model <code>{html.escape(str(info.get("model")))}</code> from <code>{html.escape(str(predictor.dir))}</code>.
Test metrics: {metrics}. <a href="/docs">API docs</a> · <a href="/model">model info</a></p>
<form id="f">{"".join(inputs)}<button type="submit" value="predict">Predict</button> {explain}</form>
<pre id="result">fill in the form and press Predict</pre>
<div id="explanation"></div>
<script>const KIND = "{kind}";
{_PAGE_SCRIPT}</script></body></html>"""


# the page's script (a plain string: no f-string braces); KIND is "tabular", "text" or "image"
_PAGE_SCRIPT = """
async function readRow(form) {
  const row = {};
  for (const el of form.querySelectorAll('[name]')) {
    if (el.dataset.kind === 'image') {
      if (!el.files.length) return null;
      row[el.name] = await new Promise((ok, fail) => {
        const rd = new FileReader(); rd.onload = () => ok(rd.result); rd.onerror = fail; rd.readAsDataURL(el.files[0]);
      });
    } else {
      row[el.name] = el.dataset.kind === 'number' ? (el.value === '' ? null : Number(el.value)) : el.value;
    }
  }
  return row;
}
function signed(a) { return a === 0 ? '0' : (a > 0 ? '+' : '-') + Math.abs(a).toPrecision(3); }
function shade(a, peak) {  // red: towards the target class, blue: away from it
  const t = 0.12 + 0.6 * (peak > 0 ? Math.min(1, Math.abs(a) / peak) : 0);
  return a >= 0 ? `rgba(214,39,40,${t})` : `rgba(31,119,180,${t})`;
}
async function heatmap(h, src) {  // the image, and beside it the image under the heat map
  const size = 224, rows = h.length, cols = h[0].length, c = document.createElement('canvas');
  c.id = 'heatmap'; c.width = 2 * size + 16; c.height = size; c.dataset.cells = rows + 'x' + cols;
  const g = c.getContext('2d'), img = new Image(), cells = document.createElement('canvas');
  cells.width = cols; cells.height = rows;
  const px = cells.getContext('2d').createImageData(cols, rows);
  for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) {
    const i = 4 * (y * cols + x), v = h[y][x];
    px.data[i] = 255; px.data[i + 1] = Math.round(220 * (1 - v)); px.data[i + 3] = Math.round(200 * v);
  }
  cells.getContext('2d').putImageData(px, 0, 0);
  img.src = src;
  try { await img.decode(); g.drawImage(img, 0, 0, size, size); g.drawImage(img, size + 16, 0, size, size); }
  catch (e) { /* the heat map alone */ }
  g.imageSmoothingEnabled = true;
  g.drawImage(cells, size + 16, 0, size, size);
  return c;
}
async function render(ex, row) {
  const why = document.getElementById('explanation');
  const head = document.createElement('p');
  head.textContent = `why ${ex.target}: ${ex.method}; ` + (ex.heatmap.length
    ? `red: where the model saw ${ex.target}` : `red: towards ${ex.target}, blue: away from it`);
  why.append(head);
  const peak = Math.max(0, ...ex.items.map(i => Math.abs(i.attribution)));
  if (ex.heatmap.length) {
    why.append(await heatmap(ex.heatmap, row.image));
  } else if (KIND === 'text') {
    const p = document.createElement('p'); p.id = 'tokens';
    for (const it of ex.items) {
      const s = document.createElement('span');
      s.className = 'tok'; s.textContent = it.name; s.title = signed(it.attribution);
      s.dataset.attribution = it.attribution; s.style.background = shade(it.attribution, peak);
      p.append(s, ' ');
    }
    why.append(p);
  } else {
    const ol = document.createElement('ol'); ol.id = 'features';
    for (const it of ex.items.slice(0, 10)) {
      const li = document.createElement('li'), b = document.createElement('b');
      li.className = it.attribution > 0 ? 'pos' : it.attribution < 0 ? 'neg' : 'zero';
      b.textContent = signed(it.attribution);
      li.append(it.name + ' ', b); ol.append(li);
    }
    why.append(ol);
  }
}
document.getElementById('f').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const explain = ev.submitter && ev.submitter.value === 'explain';
  const out = document.getElementById('result');
  document.getElementById('explanation').replaceChildren();
  const row = await readRow(ev.target);
  if (row === null) { out.textContent = 'choose an image file first'; return; }
  const r = await fetch(explain ? '/explain' : '/predict', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({instances: [row]})});
  const body = await r.json();
  if (!r.ok) { out.textContent = 'error ' + r.status + ': ' + body.detail; return; }
  const first = explain ? body.explanations[0] : {prediction: body.predictions[0]};
  out.textContent = JSON.stringify(first.prediction, null, 2);
  if (explain) await render(first.explanation, row);
});
// ?name=value fills in a field, ?autorun submits the form once on load (used by the browser
// test and for shareable links); ?autorun=explain presses Explain instead of Predict
const query = new URLSearchParams(location.search), autorun = query.get('autorun');
for (const el of document.querySelectorAll('#f [name]'))
  if (el.dataset.kind !== 'image' && query.has(el.name)) el.value = query.get(el.name);
if (autorun !== null) ((autorun === 'explain' && document.getElementById('explain')) || document.querySelector('#f button')).click();
"""


def serve_main(argv):
    p = argparse.ArgumentParser(prog="python -m keras_cases serve", description="Serve a saved run over HTTP.")
    p.add_argument("--run", required=True, help="run directory to serve")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1); requests must name it or localhost in their "
        "Host header (0.0.0.0 / ::: any name)",
    )
    p.add_argument("--port", type=cli.port, default=8000)
    args = p.parse_args(argv)
    app = create_app(args.run, args.host)
    import uvicorn

    print(f"serving {args.run} on http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

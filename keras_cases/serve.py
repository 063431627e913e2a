"""Serve a saved run over HTTP: `python -m keras_cases serve --run DIR`.

A FastAPI app (run by uvicorn) around the case's `Predictor` (the saved model, loaded with
Keras' safe_mode, plus its saved preprocessing):

- `POST /predict`  `{"instances": [ {...}, ... ]}` -> `{"predictions": [...]}`; the
  instance schema is the one the model was trained on (OpenAPI docs at `/docs`)
- `GET /health`, `GET /model` (what it is, metrics, threshold, backend)
- `GET /` a small page to try a prediction by hand

Bad input is a 4xx with a message, never a 500: a missing field or wrong type (422), an
empty or oversized request (400 / 413).
"""


import argparse
import html
import importlib
import threading

from keras_cases import UserError, cli
from keras_cases.runs import load_run, run_case

MAX_BODY = 1 << 20  # bytes
MAX_INSTANCES = 10_000


def _need_fastapi():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError("serving needs FastAPI and uvicorn: pip install 'keras-cases[serve]'")


def load_predictor(run_dir):
    d = load_run(run_dir)
    case = run_case(d)
    try:
        module = importlib.import_module(f"keras_cases.{case}")
    except ImportError:
        raise UserError(f"{d} was written by an unknown case {case!r}")
    if not hasattr(module, "load_predictor"):
        raise UserError(f"the {case} case cannot be served (it has no saved predictor)")
    return module.load_predictor(d)


def instance_model(predictor):
    """A pydantic model of one input instance, built from the fields the model was trained on."""
    from typing import Literal, Optional

    from pydantic import ConfigDict, Field, create_model

    fields = {}
    for f in predictor.fields():
        if f["kind"] == "number":
            fields[f["name"]] = (Optional[float], Field(..., examples=[f["example"]]))
        elif f["kind"] == "choice":
            fields[f["name"]] = (Optional[Literal[tuple(f["choices"])]], Field(..., examples=[f["example"]]))
        elif f["kind"] == "image":
            fields[f["name"]] = (str, Field(..., min_length=1, description="the image file, base64-encoded"))
        else:
            fields[f["name"]] = (str, Field(..., min_length=1, examples=[f["example"]]))
    return create_model(f"{predictor.case.title()}Instance", __config__=ConfigDict(extra="ignore"), **fields)


def create_app(run_dir):
    _need_fastapi()
    from typing import List

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from pydantic import Field, create_model

    predictor = load_predictor(run_dir)
    Instance = instance_model(predictor)
    Body = create_model("PredictRequest", instances=(List[Instance], Field(..., min_length=1, max_length=MAX_INSTANCES)))
    info = predictor.info()
    lock = threading.Lock()
    app = FastAPI(title=f"keras-cases: {predictor.case}", version="1",
                  description=f"Serving {predictor.dir}")

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY):
            return JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"detail": "; ".join(problems[:20]), "errors": len(problems)}, status_code=422)

    @app.exception_handler(UserError)
    async def user_error(request, exc):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/health")
    def health():
        return {"status": "ok", "case": predictor.case}

    @app.get("/model")
    def model_info():
        from keras_cases.runtime import backend

        return {**info, "serving_backend": backend(), "fields": predictor.fields()}

    @app.post("/predict")
    def predict(body: Body):
        rows = [i.model_dump() for i in body.instances]
        # FastAPI runs sync endpoints on a thread pool; Keras' predict is not thread-safe
        # (on JAX concurrent calls race on the model's state), so one prediction at a time.
        with lock:
            return {"predictions": predictor.predict(rows)}

    if hasattr(predictor, "predict_bytes"):
        @app.post("/predict/image", openapi_extra={"requestBody": {"required": True, "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}}}}})
        async def predict_image(request: Request):
            """The raw bytes of one image file (curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg')."""
            data = await request.body()
            if not data:
                raise UserError("empty body: send the bytes of one image file")
            with lock:
                return {"predictions": predictor.predict_bytes(data)}

    @app.get("/", response_class=HTMLResponse)
    def page():
        return _page(predictor, info)

    return app


def _page(predictor, info) -> str:
    inputs = []
    for f in predictor.fields():
        name = html.escape(f["name"])
        if f["kind"] == "choice":
            opts = "".join(f'<option{" selected" if c == f["example"] else ""}>{html.escape(str(c))}</option>'
                           for c in f["choices"])
            widget = f'<select name="{name}" data-kind="choice">{opts}</select>'
        elif f["kind"] == "number":
            widget = f'<input name="{name}" data-kind="number" type="number" step="any" value="{f["example"]:g}">'
        elif f["kind"] == "image":
            widget = f'<input name="{name}" data-kind="image" type="file" accept="image/*">'
        else:
            widget = f'<textarea name="{name}" data-kind="text" rows="3" cols="60">{html.escape(str(f["example"]))}</textarea>'
        inputs.append(f"<label><span>{name}</span>{widget}</label>")
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in info.get("metrics", {}).items() if isinstance(v, (int, float)))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>keras-cases: {predictor.case}</title>
<style>body{{font-family:sans-serif;max-width:52em;margin:2em auto}}label{{display:flex;gap:1em;margin:.3em 0}}
label span{{width:14em}}#result{{margin-top:1em;padding:.8em;background:#eef}}</style></head><body>
<h1>{predictor.case}: try a prediction</h1>
<p>Model <code>{html.escape(str(info.get('model')))}</code> from <code>{html.escape(str(predictor.dir))}</code>.
Test metrics: {metrics}. <a href="/docs">API docs</a> · <a href="/model">model info</a></p>
<form id="f">{''.join(inputs)}<button type="submit">Predict</button></form>
<pre id="result">fill in the form and press Predict</pre>
<script>
document.getElementById('f').addEventListener('submit', async (ev) => {{
  ev.preventDefault();
  const row = {{}};
  for (const el of ev.target.querySelectorAll('[name]')) {{
    if (el.dataset.kind === 'image') {{
      if (!el.files.length) {{ document.getElementById('result').textContent = 'choose an image file first'; return; }}
      row[el.name] = await new Promise((ok, fail) => {{
        const rd = new FileReader(); rd.onload = () => ok(rd.result); rd.onerror = fail; rd.readAsDataURL(el.files[0]);
      }});
    }} else {{
      row[el.name] = el.dataset.kind === 'number' ? (el.value === '' ? null : Number(el.value)) : el.value;
    }}
  }}
  const r = await fetch('/predict', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},
                                      body: JSON.stringify({{instances: [row]}})}});
  const body = await r.json();
  document.getElementById('result').textContent =
    r.ok ? JSON.stringify(body.predictions[0], null, 2) : 'error ' + r.status + ': ' + body.detail;
}});
// ?autorun submits the form once on load (used by the browser test and for shareable links)
if (new URLSearchParams(location.search).has('autorun')) document.querySelector('#f button').click();
</script></body></html>"""


def serve_main(argv):
    p = argparse.ArgumentParser(prog="python -m keras_cases serve", description="Serve a saved run over HTTP.")
    p.add_argument("--run", required=True, help="run directory to serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=cli.port, default=8000)
    args = p.parse_args(argv)
    app = create_app(args.run)
    import uvicorn

    print(f"serving {args.run} on http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

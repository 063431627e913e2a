"""A dashboard of every run: `python -m keras_cases runs [--root runs/]`.

Lists each run under the root with its case, backend, dataset, seed and headline test
metrics in a sortable table; a run's page shows its metrics and plots; ticking runs and
pressing "compare" shows them side by side. `GET /api/runs` returns the same as JSON.
"""


import argparse
import html
from pathlib import Path

from keras_cases import UserError, cli
from keras_cases.runs import find_runs, read_json, run_case

HEADLINE = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "macro_f1", "mae", "rmse", "mase", "loss")
FILE_TYPES = {".png": "image/png", ".gif": "image/gif", ".md": "text/markdown; charset=utf-8",
              ".csv": "text/csv; charset=utf-8", ".json": "application/json"}


def summarize_run(root: Path, d: Path) -> dict:
    m = read_json(d / "metrics.json")
    created = read_json(d / "run.json").get("created") if (d / "run.json").exists() else ""
    return {
        "id": d.relative_to(root).as_posix(), "case": run_case(d), "created": created,
        "backend": m.get("backend", ""), "dataset": m.get("dataset", ""), "seed": m.get("seed", ""),
        "seeds": m.get("seeds", 1), "seconds": m.get("seconds", ""),
        "metrics": headline(m),
    }


def headline(m: dict) -> dict:
    """The headline test metrics of a run: `accuracy` or `test_accuracy`, and so on."""
    out = {}
    for k in HEADLINE:
        v = m.get(k, m.get(f"test_{k}"))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = v
    return out


def list_runs(root) -> list[dict]:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"runs root not found: {root}")
    out = []
    for d in find_runs(root):
        try:
            out.append(summarize_run(root, d))
        except (ValueError, OSError):
            continue  # a run being written right now
    return out


def _resolve(root: Path, run_id: str, name: str | None = None) -> Path:
    p = (root / run_id / (name or "")).resolve()
    if root.resolve() not in p.parents and p != root.resolve():
        raise UserError("outside the runs root")
    return p


STYLE = """<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.25em .6em;font-size:14px}th{cursor:pointer;background:#f3f3f3}
img{max-width:48%;margin:.3em;border:1px solid #ddd}</style>"""

SORT_JS = """<script>
for (const th of document.querySelectorAll('th[data-col]')) th.addEventListener('click', () => {
  const tb = th.closest('table').tBodies[0], i = th.cellIndex, asc = th.dataset.asc !== '1';
  th.dataset.asc = asc ? '1' : '0';
  const key = r => { const t = r.cells[i].textContent; const n = parseFloat(t); return isNaN(n) ? t : n; };
  [...tb.rows].sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1))
    .forEach(r => tb.appendChild(r));
});
</script>"""


def index_page(runs: list[dict]) -> str:
    metric_cols = [k for k in HEADLINE if any(k in r["metrics"] for r in runs)]
    cols = ["case", "created", "backend", "dataset", "seed", "seeds", "seconds", *metric_cols]
    head = "<th></th>" + "".join(f'<th data-col="{c}">{c}</th>' for c in cols)
    rows = []
    for r in runs:
        cells = []
        for c in cols:
            v = r["metrics"].get(c, "") if c in metric_cols else r.get(c, "")
            cells.append(f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>")
        rid = html.escape(r["id"])
        rows.append(f'<tr><td><input type="checkbox" name="ids" value="{rid}"> '
                    f'<a href="/run/{rid}">open</a></td>{"".join(cells)}</tr>')
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>keras-cases runs</title>{STYLE}</head><body>"
            f"<h1>keras-cases runs ({len(runs)})</h1><p>Click a header to sort; tick runs and compare.</p>"
            f"<form action='/compare'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p><button type='submit'>compare selected</button></p></form>{SORT_JS}</body></html>")


def _metrics_table(ms: list[dict], names: list[str]) -> str:
    keys = sorted({k for m in ms for k, v in m.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)})
    head = "<th>key</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for k in keys:
        vals = [m.get(k, "") for m in ms]
        body.append(f"<tr><td>{html.escape(k)}</td>" + "".join(
            f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>" for v in vals) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def run_page(root: Path, run_id: str) -> str:
    d = _resolve(root, run_id)
    m = read_json(d / "metrics.json")
    imgs = "".join(f'<img src="/files/{html.escape(run_id)}/{p.name}" alt="{p.name}" title="{p.name}">'
                   for p in sorted(d.iterdir()) if p.suffix in (".png", ".gif"))
    files = " · ".join(f'<a href="/files/{html.escape(run_id)}/{p.name}">{p.name}</a>'
                       for p in sorted(d.iterdir()) if p.suffix in (".md", ".csv", ".json"))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(run_id)}</title>{STYLE}</head>"
            f"<body><p><a href='/'>all runs</a></p><h1>{html.escape(run_case(d))}: {html.escape(run_id)}</h1>"
            f"<p>{files}</p>{_metrics_table([m], ['value'])}<h2>plots</h2>{imgs}</body></html>")


def compare_page(root: Path, ids: list[str]) -> str:
    ms = [read_json(_resolve(root, i) / "metrics.json") for i in ids]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>compare</title>{STYLE}</head><body>"
            f"<p><a href='/'>all runs</a></p><h1>comparing {len(ids)} runs</h1>{_metrics_table(ms, ids)}</body></html>")


def create_app(root):
    from keras_cases.serve import _need_fastapi

    _need_fastapi()
    from typing import List

    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import FileResponse, HTMLResponse

    root = Path(root).expanduser()
    list_runs(root)  # fail early on a bad root
    app = FastAPI(title="keras-cases runs")

    def found(run_id, name=None):
        try:
            p = _resolve(root, run_id, name)
        except UserError:
            raise HTTPException(404, "no such run")
        if not p.exists() or (name is None and not (p / "metrics.json").exists()):
            raise HTTPException(404, f"no such {'file' if name else 'run'}: {run_id}/{name or ''}")
        return p

    @app.get("/api/runs")
    def api_runs():
        return list_runs(root)

    @app.get("/", response_class=HTMLResponse)
    def index():
        return index_page(list_runs(root))

    @app.get("/run/{run_id:path}", response_class=HTMLResponse)
    def run(run_id: str):
        found(run_id)
        return run_page(root, run_id)

    @app.get("/compare", response_class=HTMLResponse)
    def compare(ids: List[str] = Query(...)):
        for i in ids:
            found(i)
        return compare_page(root, ids)

    @app.get("/files/{run_id:path}/{name}")
    def files(run_id: str, name: str):
        p = found(run_id, name)
        if p.suffix not in FILE_TYPES:
            raise HTTPException(404, "not a report file")
        return FileResponse(p, media_type=FILE_TYPES[p.suffix])

    return app


def runs_main(argv):
    p = argparse.ArgumentParser(prog="python -m keras_cases runs", description="Dashboard of all runs.")
    p.add_argument("--root", default="runs", help="directory holding the runs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=cli.port, default=8001)
    p.add_argument("--list", action="store_true", help="print the runs as a table and exit")
    args = p.parse_args(argv)
    if args.list:
        for r in list_runs(args.root):
            ms = " ".join(f"{k}={v:.4f}" for k, v in r["metrics"].items())
            print(f"{r['id']:50s} {r['case']:10s} {r['backend']:10s} {ms}")
        return 0
    app = create_app(args.root)
    import uvicorn

    print(f"dashboard of {args.root} on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

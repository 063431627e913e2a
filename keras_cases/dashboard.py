"""A dashboard of every run: `python -m keras_cases runs [--root runs/]`.

Lists each run under the root with its case, status, backend, dataset, seed and headline
test metrics in a sortable table; a run's page shows its metrics and plots; ticking runs and
pressing "compare" shows them side by side. `GET /api/runs` returns the same as JSON.

A run is a directory under the root holding run.json or metrics.json. A run whose files are
broken is listed as "broken" with the reason, never a 500. Only report files (FILE_TYPES)
directly in a run directory (or its SUBFOLDERS) are served, and only when the file, symlinks
resolved, lies inside that run directory. Every name put into HTML is escaped.
"""

import argparse
import html
import math
from pathlib import Path
from urllib.parse import quote

from keras_cases import UserError, cli, httpguard
from keras_cases.runs import read_json

HEADLINE = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "macro_f1", "mae", "rmse", "mase", "loss")
FILE_TYPES = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".md": "text/markdown; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
}
SUBFOLDERS = ("models",)  # folders runs write inside their directory
STATUSES = ("running", "complete", "failed", "interrupted", "broken")
MAX_BODY = 64 << 10  # the dashboard takes no request bodies


def _inside(p: Path, d: Path) -> bool:
    """`p`, symlinks resolved, is `d` or lies inside it."""
    try:
        p.resolve().relative_to(d.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def find_runs(root: Path) -> dict[str, Path]:
    """{run id (path under root): directory} of every run under `root`, newest first."""
    found = set()
    for name in ("run.json", "metrics.json"):
        found |= {p.parent for p in root.rglob(name) if _inside(p.parent, root)}

    def mtime(d):
        try:
            return d.stat().st_mtime
        except OSError:
            return 0.0

    # the root itself may be a run: its id is its name (an id of "." would not survive URLs)
    return {
        (d.relative_to(root).as_posix() if d != root else root.resolve().name or "run"): d
        for d in sorted(found, key=mtime, reverse=True)
    }


def _number(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _own_json(d: Path, name: str) -> dict | None:
    """run.json / metrics.json of run `d` (None when absent); one elsewhere is a UserError."""
    p = d / name
    if not p.exists() and not p.is_symlink():
        return None
    if not _inside(p, d):
        raise UserError(f"{name} points outside the run directory")
    return read_json(p)


def summarize_run(run_id: str, d: Path) -> dict:
    out = {
        "id": run_id,
        "case": d.parent.name,
        "status": "broken",
        "created": "",
        "backend": "",
        "dataset": "",
        "seed": None,
        "seeds": None,
        "seconds": None,
        "metrics": {},
        "error": None,
    }
    try:
        record, m = _own_json(d, "run.json"), _own_json(d, "metrics.json")
    except UserError as e:
        return {**out, "error": " ".join(str(e).replace(str(d), run_id).split())}
    record = record or {}
    m = m or {}
    status = record.get("status", "complete")
    case = record.get("case", out["case"])
    out.update(
        case=str(case),
        status=status if status in STATUSES else "broken",
        created=str(record.get("created", "")),
        backend=str(m.get("backend", "")),
        dataset=str(m.get("dataset", "")),
        seed=_number(m.get("seed")),
        seeds=_number(m.get("seeds", 1)),
        seconds=_number(m.get("seconds")),
        metrics=headline(m),
    )
    if status not in STATUSES:
        out["error"] = f"run.json has an unknown status {str(status)[:40]!r}"
    elif "case" in record and not (isinstance(case, str) and case):
        out.update(status="broken", error='run.json does not name the case that wrote it (no "case")')
    return out


def headline(m: dict) -> dict:
    """The headline test metrics of a run: its `headline` block (written by Run.finish), else,
    for runs from before it, `accuracy` or `test_accuracy`, and so on."""
    block = m.get("headline")
    if isinstance(block, dict):
        numbers = {str(k)[:60]: _number(v) for k, v in block.items()}
        return {k: v for k, v in numbers.items() if v is not None}
    out = {}
    for k in HEADLINE:
        v = _number(m.get(k, m.get(f"test_{k}")))
        if v is not None:
            out[k] = v
    return out


def list_runs(root) -> list[dict]:
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise UserError(f"--root {root} is not a directory")
    if not root.is_dir():
        raise UserError(f"runs root not found: {root}")
    return [summarize_run(i, d) for i, d in find_runs(root).items()]


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


def esc(v) -> str:
    return html.escape(str(v), quote=True)


def url(*parts: str) -> str:
    """An escaped href/src: each part percent-encoded (its slashes kept), then HTML-escaped."""
    return esc("/".join(quote(p, safe="/") for p in parts))


def _cell(v) -> str:
    return f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{esc('' if v is None else v)}</td>"


def index_page(runs: list[dict]) -> str:
    metric_cols = [k for k in HEADLINE if any(k in r["metrics"] for r in runs)]
    metric_cols += sorted({k for r in runs for k in r["metrics"]} - set(HEADLINE))
    cols = ["case", "status", "created", "backend", "dataset", "seed", "seeds", "seconds", *metric_cols]
    head = "<th></th>" + "".join(f'<th data-col="{c}">{c}</th>' for c in cols)
    rows = []
    for r in runs:
        cells = "".join(_cell(r["metrics"].get(c, "") if c in metric_cols else r.get(c, "")) for c in cols)
        note = f' title="{esc(r["error"])}"' if r.get("error") else ""
        rows.append(
            f'<tr{note}><td><input type="checkbox" name="ids" value="{esc(r["id"])}"> '
            f'<a href="{url("/run", r["id"])}">open</a></td>{cells}</tr>'
        )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>keras-cases runs</title>{STYLE}</head><body>"
        f"<h1>keras-cases runs ({len(runs)})</h1><p>Click a header to sort; tick runs and compare.</p>"
        f"<form action='/compare'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<p><button type='submit'>compare selected</button></p></form>{SORT_JS}</body></html>"
    )


def _metrics_table(ms: list[dict], names: list[str]) -> str:
    keys = sorted(
        {str(k) for m in ms for k, v in m.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    )
    head = "<th>key</th>" + "".join(f"<th>{esc(n)}</th>" for n in names)
    body = [f"<tr><td>{esc(k)}</td>" + "".join(_cell(m.get(k, "")) for m in ms) + "</tr>" for k in keys]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def run_files(d: Path) -> list[str]:
    """The report files of run `d` that the dashboard serves: names relative to `d`."""
    out = []
    for folder in (d, *(d / s for s in SUBFOLDERS)):
        if folder.is_dir() and _inside(folder, d):
            out += [
                p.relative_to(d).as_posix()
                for p in sorted(folder.iterdir())
                if p.suffix in FILE_TYPES and p.is_file() and _inside(p, d)
            ]
    return out


def _metrics(d: Path) -> dict:
    try:
        return _own_json(d, "metrics.json") or {}
    except UserError:
        return {}


def run_page(summary: dict, d: Path) -> str:
    rid = summary["id"]
    files = run_files(d)
    imgs = "".join(
        f'<img src="{url("/files", rid, f)}" alt="{esc(f)}" title="{esc(f)}">'
        for f in files
        if f.endswith((".png", ".gif"))
    )
    links = " · ".join(
        f'<a href="{url("/files", rid, f)}">{esc(f)}</a>' for f in files if not f.endswith((".png", ".gif"))
    )
    problem = f"<p><b>broken run:</b> {esc(summary['error'])}</p>" if summary.get("error") else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(rid)}</title>{STYLE}</head>"
        f"<body><p><a href='/'>all runs</a></p><h1>{esc(summary['case'])}: {esc(rid)} ({esc(summary['status'])})</h1>"
        f"{problem}<p>{links}</p>{_metrics_table([_metrics(d)], ['value'])}<h2>plots</h2>{imgs}</body></html>"
    )


def compare_page(pairs: list[tuple[str, Path]]) -> str:
    ms = [_metrics(d) for _, d in pairs]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>compare</title>{STYLE}</head><body>"
        f"<p><a href='/'>all runs</a></p><h1>comparing {len(pairs)} runs</h1>"
        f"{_metrics_table(ms, [i for i, _ in pairs])}</body></html>"
    )


def _models():
    from typing import Literal

    from pydantic import create_model

    number = int | float | None
    Run = create_model(
        "RunSummary",
        id=(str, ...),
        case=(str, ...),
        status=(Literal[STATUSES], ...),
        created=(str, ...),
        backend=(str, ...),
        dataset=(str, ...),
        seed=(number, ...),
        seeds=(number, ...),
        seconds=(number, ...),
        metrics=(dict[str, float], ...),
        error=(str | None, ...),
    )
    return list[Run]


def create_app(root, host: str = "127.0.0.1"):
    from keras_cases.serve import _need_fastapi

    _need_fastapi()
    from typing import Annotated

    from fastapi import FastAPI, HTTPException, Query
    from fastapi import Path as PathParam
    from fastapi.responses import FileResponse, HTMLResponse

    root = Path(root).expanduser()
    list_runs(root)  # fail early on a bad root
    app = FastAPI(
        title="keras-cases runs", version="1", responses=httpguard.responses(400, 413, 422, max_body=MAX_BODY)
    )
    httpguard.install(app, host, MAX_BODY)
    not_found = httpguard.responses(404)
    ids = list(find_runs(root))[:3] or ["churn/20250101T000000Z"]  # examples for the docs (and fuzzers)
    RunId = Annotated[str, PathParam(examples=ids)]

    def found(run_id: str) -> tuple[dict, Path]:
        d = find_runs(root).get(run_id)
        if d is None:
            raise HTTPException(404, f"no such run: {run_id[:200]}")
        return summarize_run(run_id, d), d

    @app.get("/api/runs", response_model=_models())
    def api_runs():
        return list_runs(root)

    @app.get("/", response_class=HTMLResponse)
    def index():
        return index_page(list_runs(root))

    @app.get("/run/{run_id:path}", response_class=HTMLResponse, responses=not_found)
    def run(run_id: RunId):
        return run_page(*found(run_id))

    @app.get("/compare", response_class=HTMLResponse, responses=not_found)
    def compare(ids: Annotated[list[str], Query(min_length=1, max_length=50, examples=[ids])]):
        return compare_page([(i, found(i)[1]) for i in ids])

    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {t.split(";")[0]: ({} if t == "application/json" else binary) for t in FILE_TYPES.values()}

    @app.get(
        "/files/{run_id:path}/{name}",
        response_class=FileResponse,
        responses={**not_found, 200: {"description": "a report file of the run", "content": content}},
    )
    def files(run_id: RunId, name: Annotated[str, PathParam(examples=["report.md", "metrics.json"])]):
        p = _run_file(find_runs(root), f"{run_id}/{name}")
        if p is None:
            raise HTTPException(404, "no such report file")
        return FileResponse(p, media_type=FILE_TYPES[p.suffix])

    return app


def _run_file(runs: dict[str, Path], path: str) -> Path | None:
    """The report file `path` (run id / [subfolder /] name) names, if the dashboard serves it."""
    for run_id, d in runs.items():
        if path.startswith(run_id + "/"):
            rest = path[len(run_id) + 1 :]
            if rest in run_files(d):
                return d / rest
    return None


def runs_main(argv):
    p = argparse.ArgumentParser(prog="python -m keras_cases runs", description="Dashboard of all runs.")
    p.add_argument("--root", default="runs", help="directory holding the runs")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1); requests must name it or localhost in their "
        "Host header (0.0.0.0 / ::: any name)",
    )
    p.add_argument("--port", type=cli.port, default=8001)
    p.add_argument("--list", action="store_true", help="print the runs as a table and exit")
    args = p.parse_args(argv)
    if args.list:
        for r in list_runs(args.root):
            ms = " ".join(f"{k}={v:.4f}" for k, v in r["metrics"].items())
            print(f"{r['id']:50s} {r['case']:10s} {r['status']:11s} {r['backend']:10s} {ms}")
        return 0
    app = create_app(args.root, args.host)
    import uvicorn

    print(f"dashboard of {args.root} on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

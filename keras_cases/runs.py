"""A run directory: config.json, metrics.json, history.csv, model, report.md and plots."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from keras_cases import UserError


def jsonable(o):
    """`o` with NumPy values, paths and tuples turned into what json.dumps takes."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return o


_opened: list = []  # the runs this process opened, in order (see `lifecycle`)
ARGV: list[str] = []  # the command line of this process' case, recorded in run.json
PARAMS: list = []  # [its parsed flags] (MLflow parameters)
_resuming: dict = {}  # {"dir": Path, "record": run.json} while a --resume is under way


def resume_into(directory, case: str) -> list[str]:
    """Check that `directory` is a run of `case` that can be continued; returns the command
    line it was started with (the shared parser re-parses it)."""
    d = Path(directory).expanduser()
    if not (d / "run.json").is_file():
        raise UserError(f"--resume {d}: not a run directory (no run.json)")
    record = read_json(d / "run.json")
    if record.get("case") != case:
        raise UserError(f"--resume {d}: that run is of the {record.get('case')!r} case, not {case!r}")
    if record.get("status") == "complete":
        raise UserError(f"--resume {d}: that run is already complete")
    if not isinstance(record.get("argv"), list):
        raise UserError(f"--resume {d}: run.json does not record the command line it was started with")
    _resuming.update(dir=d.resolve(), record=record)
    ARGV[:] = record["argv"]
    return [a for a in record["argv"] if a != "--overwrite"]


def _claim(directory: Path) -> list[Path]:
    """mkdir `directory` (and missing parents); return the folders this call created."""
    made = []
    for d in reversed([directory, *directory.parents]):
        if not d.exists():
            d.mkdir(exist_ok=True)
            made.append(d)
    return made


def check_out(out, overwrite: bool) -> bool:
    """Check `--out` before any work starts (the shared parser calls it): True when it is
    an earlier run directory that --overwrite will clear; a UserError when it cannot be used."""
    if out is None:
        return False
    d = Path(out).expanduser()
    if d.exists() and not d.is_dir():
        raise UserError(f"--out {d} exists and is not a directory")
    if not d.is_dir() or not any(d.iterdir()):
        return False
    if not overwrite:
        raise UserError(f"--out {d} already holds files: pass --overwrite to replace that run, or choose a new --out")
    if not (d / "run.json").is_file():
        raise UserError(
            f"--out {d} is not empty and is not a keras-cases run directory (no "
            "run.json): refusing to delete it even with --overwrite"
        )
    return True


class Run:
    """Where one invocation of a case study writes everything it produces.

    The default directory is runs/<case>/<UTC timestamp>, with -2, -3, ... appended when
    another run already took that second (claimed with an exclusive mkdir, so two runs
    never share one). `--out DIR` must be new or empty; a non-empty one is refused unless
    `overwrite`, and then only if it is a run directory (it holds run.json), whose old
    contents are removed first so files of two runs never mix. run.json records the
    status: running, then complete / failed / interrupted (see `lifecycle`).
    """

    def __init__(self, case: str, out: str | None = None, tensorboard: bool = False, overwrite: bool = False):
        self.case = case
        resuming = (
            _resuming.pop("record", None)
            if out is not None and Path(out).expanduser().resolve() == _resuming.get("dir")
            else None
        )
        from keras_cases import runtime

        self.scratch = runtime.process_id() > 0  # several processes: only process 0 writes the run
        try:
            if self.scratch:
                self.dir, self._made = Path(tempfile.mkdtemp(prefix=f"keras-cases-{case}-{runtime.process_id()}-")), []
            elif resuming is not None:
                self.dir, self._made = Path(out).expanduser(), []
            elif out is None:
                self.dir, self._made = self._new_default(case)
            else:
                self.dir = Path(out).expanduser()
                self._prepare_out(overwrite)
                self._made = _claim(self.dir)
        except OSError as e:
            raise UserError(f"cannot create run directory {out or 'under runs/'}: {e.strerror or e}")
        self.created = (resuming or {}).get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(
            timespec="seconds"
        )
        self.argv = list(ARGV)
        self.t0 = time.time()
        self.resumed = resuming is not None
        self.status = "running"
        self.write_json("run.json", self._record(**({"resumed": True} if self.resumed else {})))
        _opened.append(self)
        from keras_cases import callbacks, tracking

        callbacks.checkpoint_to(self.dir / "checkpoints")
        params = vars(PARAMS[0]) if PARAMS else {}
        uri = tracking.requested(params.get("mlflow"))
        if uri and not self.scratch:
            tracking.start(self, uri, params)
        if tensorboard:
            callbacks.log_tensorboard_to(self.dir / "tensorboard")

    @staticmethod
    def _new_default(case):
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        parent = Path("runs") / case
        made = _claim(parent)
        for n in range(1, 10_000):
            d = parent / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                d.mkdir()
            except FileExistsError:
                continue
            return d, made + [d]
        raise UserError(f"too many runs started in one second under {parent}")

    def _prepare_out(self, overwrite: bool):
        d = self.dir
        if not check_out(d, overwrite):
            return
        for child in d.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def _record(self, **extra) -> dict:
        return {"case": self.case, "created": self.created, "status": self.status, "argv": self.argv, **extra}

    def end(self, status: str, error: str | None = None, user_mistake: bool = False):
        """Record how the run ended. A run that failed on a user mistake before it wrote
        anything but run.json is removed (with the folders it created), so bad input
        leaves no files behind; any other ending keeps everything."""
        self.status = status
        from keras_cases import tracking

        tracking.finish(self, status)
        if user_mistake and self.dir.is_dir():
            left = [p for p in self.dir.rglob("*") if p.is_file() and p.name != "run.json"]
            if not left:
                shutil.rmtree(self.dir, ignore_errors=True)
                for d in reversed(self._made):
                    with contextlib.suppress(OSError):
                        d.rmdir()  # only if empty
                return
        from keras_cases import callbacks

        callbacks.checkpoint_to(None)
        if status == "complete":  # checkpoints are for resuming; a complete run needs none
            shutil.rmtree(self.dir / "checkpoints", ignore_errors=True)
        if self.dir.is_dir():
            extra = {"finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
            if self.resumed:
                extra["resumed"] = True
            if error:
                extra["error"] = error
            self.write_json("run.json", self._record(**extra))
        if self.scratch:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name: str) -> Path:
        return self.dir / name

    def finish(
        self,
        metrics: dict,
        sections,
        *,
        title: str,
        headline: dict | None = None,
        history: dict | None = None,
        config: dict | None = None,
        data: str | None = None,
        notes: list[str] = (),
    ) -> dict:
        """End a case's run: history.csv (if `history`), config.json (the parsed flags unless
        `config`), metrics.json (with the backend, the wall time and a `headline` block of the
        case's headline test metrics) and report.md: one shared header, then `sections`
        (strings, or (title, text) pairs that become `## title` sections). Returns metrics."""
        from keras_cases import runtime

        metrics = {**runtime.backend_report(), **metrics}
        metrics.setdefault("case", self.case)
        metrics["seconds"] = round(time.time() - self.t0, 2)
        if headline is not None:
            metrics["headline"] = {k: v for k, v in headline.items() if v is not None}
        if history:
            self.write_history(history)
        self.write_json("config.json", config if config is not None else (vars(PARAMS[0]) if PARAMS else {}))
        self.write_json("metrics.json", metrics)
        body = [s if isinstance(s, str) else f"## {s[0]}\n\n{s[1]}" for s in sections]
        self.write_text("report.md", "\n\n".join([report_header(title, metrics, data, notes), *body]).rstrip() + "\n")
        print(f"wrote {self.dir}/ ({', '.join(sorted(p.name for p in self.dir.iterdir() if p.is_file()))})", flush=True)
        return metrics

    def write_json(self, name: str, obj) -> Path:
        p = self.path(name)
        write_text(p, json.dumps(jsonable(obj), indent=2) + "\n")
        return p

    def write_history(self, history: dict, name: str = "history.csv") -> Path:
        """history: {model name: keras History.history dict}; one row per model and epoch."""
        frames = []
        for model, h in history.items():
            df = pd.DataFrame(h)
            df.insert(0, "epoch", np.arange(1, len(df) + 1))
            df.insert(0, "model", model)
            frames.append(df)
        p = self.path(name)
        with atomic(p) as tmp:
            pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
        return p

    def write_text(self, name: str, text: str) -> Path:
        p = self.path(name)
        write_text(p, text)
        return p


def report_header(title: str, m: dict, data: str | None = None, notes=()) -> str:
    """The opening every report shares: data and split, backend and devices, seeds, wall time."""
    split = ", ".join(
        f"{m[k]:,} {name}" for k, name in (("n_train", "train"), ("n_val", "validation"), ("n_test", "test")) if k in m
    )
    data = data or m.get("dataset")
    seed, n = m.get("seed"), m.get("seeds", 1) or 1
    lines = [f"# {title}", ""]
    if data or split:
        lines.append(f"- data: {data or ''}{'; ' if data and split else ''}{split}")
    devices = ", ".join(m.get("devices") or [])
    dist = f", {m['distribution']}" if m.get("distribution", "none") != "none" else ""
    lines.append(
        f"- backend: {m.get('backend')} (Keras {m.get('keras_version')}, {m.get('backend')} "
        f"{m.get('framework_version')}), devices {devices}{dist}"
    )
    if seed is not None:
        lines.append(f"- seed{'s' if n > 1 else ''}: {seed if n == 1 else f'{seed}..{seed + n - 1}'}")
    lines.append(f"- wall time: {m.get('seconds')} s")
    if m.get("quick"):
        lines.append("- quick run: small data and few epochs, a smoke test, not a result")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


@contextlib.contextmanager
def lifecycle():
    """Around one command: every run it opens ends as complete, failed (with the error line)
    or interrupted. A failure from a user mistake (UserError) before any result was written
    leaves no run directory behind."""
    mark = len(_opened)

    def end(status, error=None, user=False):
        for r in _opened[mark:]:
            if r.status == "running":
                r.end(status, error, user_mistake=user)
                if status == "interrupted":
                    print(f"interrupted: {r.dir} can be continued with --resume {r.dir}", file=sys.stderr, flush=True)
        del _opened[mark:]

    try:
        yield
    except UserError as e:
        end("failed", " ".join(str(e).split()), user=True)
        raise
    except KeyboardInterrupt:
        end("interrupted")
        raise
    except SystemExit as e:
        end("complete" if not e.code else "failed", None if not e.code else f"exit {e.code}")
        raise
    except BaseException as e:
        end("failed", f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
        raise
    else:
        end("complete")


def command(main):
    """Decorator for a case's `main(argv)`: runs it inside `lifecycle()`, whether it is
    called from the command line (cli.run) or from a notebook or test."""
    import functools

    @functools.wraps(main)
    def wrapped(*a, **k):
        with lifecycle():
            rc = main(*a, **k)
        return rc

    return wrapped


@contextlib.contextmanager
def atomic(path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path` (so a
    reader never sees a half-written file), on any error it is removed."""
    path = Path(path)
    # the real suffix last: Keras and matplotlib choose the format from it
    base, dot, ext = path.name.partition(".")  # all suffixes kept: x.weights.h5, x.keras
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{dot}{ext}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> Path:
    with atomic(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def output_file(path, overwrite: bool = False, flag: str = "--output") -> Path:
    """A file a command is about to write for the user: its folder must exist, and an
    existing file is replaced only with --overwrite. Returns the path (write it with
    `atomic`)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{flag} {p} is a directory: give a file name")
    if not p.parent.is_dir():
        raise UserError(f"{flag} {p}: the folder {p.parent} does not exist")
    if p.exists() and not overwrite:
        raise UserError(f"{flag} {p} already exists: pass --overwrite to replace it, or choose another name")
    return p


def load_run(directory, required=("metrics.json",)) -> Path:
    """A finished run directory: it exists, holds `required`, and its run.json (if any:
    runs from before run.json had a status have none) says it is complete."""
    d = Path(directory).expanduser()
    if not d.is_dir():
        raise UserError(f"run directory not found: {d}")
    if (d / "run.json").exists():
        info = read_json(d / "run.json")
        status = info.get("status", "complete")
        if status != "complete":
            why = f": {info['error']}" if info.get("error") else ""
            raise UserError(f"{d} is not a complete run (status {status}{why})")
    for name in required:
        if not (d / name).is_file():
            raise UserError(f"{d} is not a finished run: it has no {name}")
    return d


def read_json(path) -> dict:
    """A JSON object from a run directory; a missing, unreadable or corrupt file is a UserError."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} is missing")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}")
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({str(e).splitlines()[0]})")
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a JSON object")
    return obj


def load_model(path):
    """A saved Keras model (safe_mode, not compiled); a truncated or foreign file is a UserError."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # zip, h5 or deserialisation errors: all mean a broken file here
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"{path} cannot be loaded as a Keras model ({type(e).__name__}: {first})")


def markdown_table(rows: list[dict], columns: list[str], fmt="{:.4f}") -> str:
    def cell(v):
        if isinstance(v, float):
            return fmt.format(v)
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def run_case(directory) -> str:
    """The case study that wrote a run directory (run.json, else the runs/<case>/ parent)."""
    d = Path(directory)
    if (d / "run.json").exists():
        case = read_json(d / "run.json").get("case")
        if not isinstance(case, str) or not case:
            raise UserError(f'{d / "run.json"} does not name the case that wrote it (no "case")')
        return case
    return d.parent.name


def find_runs(root) -> list[Path]:
    """Every finished run (a directory holding metrics.json) under `root`, newest first."""
    root = Path(root).expanduser()
    found = [p.parent for p in root.rglob("metrics.json")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

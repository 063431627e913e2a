"""A run directory: config.json, metrics.json, history.csv, model, report.md and plots."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from keras_cases import UserError


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return o


class Run:
    """Where one invocation of a case study writes everything it produces."""

    def __init__(self, case: str, out: str | None = None, tensorboard: bool = False):
        if out is None:
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            out = Path("runs") / case / stamp
        self.case = case
        self.dir = Path(out)
        if self.dir.exists() and not self.dir.is_dir():
            raise UserError(f"--out {self.dir} exists and is not a directory")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create run directory {self.dir}: {e.strerror}")
        if tensorboard:
            from keras_cases import callbacks

            callbacks.log_tensorboard_to(self.dir / "tensorboard")
        self.write_json("run.json", {  # what the dashboard and `serve` read to know the case
            "case": case,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        })

    def path(self, name: str) -> Path:
        return self.dir / name

    def write_json(self, name: str, obj) -> Path:
        p = self.path(name)
        write_text(p, json.dumps(_jsonable(obj), indent=2) + "\n")
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


@contextlib.contextmanager
def atomic(path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path` (so a
    reader never sees a half-written file), on any error it is removed."""
    path = Path(path)
    # the real suffix last: Keras and matplotlib choose the format from it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
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
    d = Path(directory).expanduser()
    if not d.is_dir():
        raise UserError(f"run directory not found: {d}")
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
            raise UserError(f"{d / 'run.json'} does not name the case that wrote it (no \"case\")")
        return case
    return d.parent.name


def find_runs(root) -> list[Path]:
    """Every finished run (a directory holding metrics.json) under `root`, newest first."""
    root = Path(root).expanduser()
    found = [p.parent for p in root.rglob("metrics.json")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

"""A per-epoch checkpoint for a training loop that is not a `fit` (the GAN's alternating
`train_on_batch` steps), the counterpart of callbacks.Resumable: under
<run>/checkpoints/<name>/ it keeps every variable of the models (weights, batch-norm
statistics, dropout seed states) and of their optimizers, the epochs done, the history and
whatever else the loop records per epoch, the loop's own NumPy generator and the global
random state (Python, NumPy, the framework's); `--resume RUN_DIR` restores it and the loop
goes on from the next epoch, to the same weights as a run never stopped. It honours the
KERAS_CASES_STOP_AFTER_EPOCHS test hook as a fit does."""

from __future__ import annotations

import json

import keras
import numpy as np

from keras_cases.callbacks import checkpoint_dir, rng_state, seed_generators, set_rng_state, stop_if_asked
from keras_cases.runs import atomic, jsonable


def _state_variables(models, optimizers) -> list:
    """Every variable the loop changes, in a fixed order: the models' weights and seed
    states, then the optimizers' variables (iterations and moments; build them first)."""
    out = []
    for m in models:
        out += [*m.weights, *(sg.state for sg in seed_generators(m))]
    for opt in optimizers:
        out += list(opt.variables)
    return out


class LoopCheckpoint:
    """Save and restore a custom training loop's state every epoch (see the module docstring).

    `models` and `optimizers` are what the loop trains; `extra` names per-epoch arrays the
    loop keeps (e.g. sample frames), saved with the rest."""

    def __init__(self, name: str, models, optimizers):
        self.name, self.dir = name, checkpoint_dir(name)
        self.models, self.optimizers = list(models), list(optimizers)

    def load(self, loop_rng: np.random.Generator):
        """The saved state, restored into the models, optimizers and random generators, as
        {"epoch", "history", "extra"}; None when there is nothing to resume."""
        if self.dir is None or not (self.dir / "state.npz").is_file():
            return None
        arrays = np.load(self.dir / "state.npz")
        state = json.loads(str(arrays["state_json"]))
        for i, v in enumerate(_state_variables(self.models, self.optimizers)):
            v.assign(arrays[f"v{i}"])
        loop_rng.bit_generator.state = state["loop_rng"]
        state["rng"]["numpy"][1] = arrays["numpy_rng"]
        set_rng_state(state["rng"])
        state["extra"] = {k: list(arrays[f"extra_{k}"]) for k in state["extra"]}
        print(f"resumed {self.dir.name} at epoch {state['epoch']}", flush=True)
        return state

    def save(self, epoch: int, history: dict, loop_rng: np.random.Generator, extra: dict) -> None:
        """After `epoch` epochs: write the state (atomically), then stop if the test hook asks."""
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        variables = _state_variables(self.models, self.optimizers)
        arrays = {f"v{i}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(variables)}
        arrays.update({f"extra_{k}": np.asarray(v) for k, v in extra.items()})
        rng = rng_state()
        arrays["numpy_rng"], rng["numpy"][1] = rng["numpy"][1], None
        state = {"epoch": epoch, "history": history, "loop_rng": loop_rng.bit_generator.state, "rng": rng}
        arrays["state_json"] = np.array(json.dumps(jsonable({**state, "extra": list(extra)})))
        with atomic(self.dir / "state.npz") as tmp:  # one file: the arrays and the state always agree
            np.savez(tmp, **arrays)
        stop_if_asked(epoch)

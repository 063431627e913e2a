"""benchmarks/airbench_torch.py (the plain-PyTorch reference) on a small problem: its
whitening conv on standardised training pixels, then a short run of narrow widths.

    python airbench_torch_reference.py OUT.json
"""

import json
import sys

import numpy as np
import torch

from benchmarks import airbench_torch
from keras_cases.data import images


def main(out):
    d = images.cifar10_per_class(500)
    x = torch.from_numpy(np.ascontiguousarray(d.x_train[:2000].transpose(0, 3, 1, 2))).float().div(255)
    x = (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)
    conv = torch.nn.Conv2d(3, 24, 2)
    airbench_torch.whitening(torch, conv, x)
    with torch.no_grad():
        z = conv(x)
    half = z[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)  # the second 12 filters are the negatives
    cov = (half.T @ half / len(half)).numpy()
    r = airbench_torch.train(d, 4, widths=(16, 32, 32), log=lambda line: None)
    json.dump(
        {
            "cov": cov.tolist(),
            "mirror": float((z[:, 12:] + z[:, :12]).abs().max()),
            "whiten_trainable": bool(conv.weight.requires_grad),
            **{k: r[k] for k in ("test_accuracy", "test_accuracy_tta", "val_accuracy_tta")},
            "val_by_epoch": [h["val_accuracy"] for h in r["history"]],
        },
        open(out, "w"),
    )


if __name__ == "__main__":
    main(sys.argv[1])

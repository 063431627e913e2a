"""airbench94 written again in plain PyTorch, from the paper (Jordan 2024, arXiv:2404.00498)
and not from keras_cases/cifar/airbench94.py, trained on the same data split: a reference
that tells the Keras port's accuracy from the data's (issue 19: the port reaches 91% on the
JPEG copy where the paper reports 94% on the original arrays).

    python -m benchmarks.airbench_torch --epochs 10              # the paper's recipe, 10 epochs
    python -m benchmarks.airbench_torch --quick                  # 5,000 images, 4 epochs

PyTorch in the ways the paper's code is written, where Keras differs: the summed loss with
its per-1024-examples learning rate and weight decay (coupled, through the momentum), two
parameter groups (the batch-norm biases at 64x the rate), PyTorch's default initialisation,
batch-norm momentum 0.4 in PyTorch's convention and epsilon 1e-12, a lookahead that averages
the batch-norm statistics too, flips alternating by epoch from a fixed random mask, flip +
1-pixel translate TTA weighted as the paper's. Compute is bfloat16 autocast on the CPU when
asked (`--bf16`). Like benchmarks/raw.py, a benchmark may import a framework: measuring it
without Keras is the point.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

HYP = {
    "lr": 11.5,  # per 1024 examples, on the summed loss
    "momentum": 0.85,
    "weight_decay": 0.0153,  # per 1024 examples
    "bias_scaler": 64.0,
    "label_smoothing": 0.2,
    "whiten_bias_epochs": 3,
    "batch_size": 1024,
    "widths": (64, 256, 256),
    "bn_momentum": 0.6,  # the paper's convention: running = 0.6 running + 0.4 batch
    "scaling_factor": 1 / 9,
    "translate": 2,
}


def build(torch, nn, widths):
    """whiten (2x2 conv, 24 filters, bias) -> GELU -> 3 x [conv, pool, BN, GELU, conv, BN,
    GELU] -> max-pool 3 -> linear (no bias) -> x 1/9."""

    class BN(nn.BatchNorm2d):
        def __init__(self, c):
            super().__init__(c, eps=1e-12, momentum=1 - HYP["bn_momentum"])
            self.weight.requires_grad = False  # scale fixed at 1, bias learnt

    def conv(cin, cout):
        return nn.Conv2d(cin, cout, 3, padding=1, bias=False)

    layers, cin = [nn.Conv2d(3, 24, 2, padding=0, bias=True), nn.GELU()], 24
    for w in widths:
        layers += [conv(cin, w), nn.MaxPool2d(2), BN(w), nn.GELU(), conv(w, w), BN(w), nn.GELU()]
        cin = w
    layers += [nn.MaxPool2d(3), nn.Flatten(), nn.Linear(cin, 10, bias=False)]
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            with torch.no_grad():  # dirac: the first c_in filters pass their input through
                nn.init.dirac_(m.weight[: m.in_channels])
    return net


def whitening(torch, conv, x, eps=5e-4):
    """The first conv from the eigenvectors of the 2x2 patches' second moment (x normalised, NCHW)."""
    c, (h, w) = x.shape[1], conv.weight.shape[2:]
    patches = x.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w).float()
    flat = patches.reshape(len(patches), -1)
    vals, vecs = torch.linalg.eigh(flat.T @ flat / len(flat))
    vals, vecs = vals.flip(0), vecs.T.flip(0)
    filt = vecs.reshape(-1, c, h, w) / torch.sqrt(vals + eps).view(-1, 1, 1, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([filt, -filt]))
        conv.bias.zero_()
    conv.weight.requires_grad = False


def batches(torch, x, y, epoch, mask, rng, bs, pad):
    """One epoch: reflect-padded random translations, flips from `mask` alternating by epoch,
    shuffled, the last partial batch kept."""
    n = len(x)
    flip = mask ^ bool(epoch % 2)
    xb = torch.where(torch.from_numpy(flip).view(-1, 1, 1, 1), x.flip(3), x)
    padded = torch.nn.functional.pad(xb, (pad,) * 4, mode="reflect")
    dx, dy = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    out = torch.empty_like(x)
    for i in range(2 * pad + 1):  # one slice per (dy, dx) pair: vectorised translations
        for j in range(2 * pad + 1):
            sel = torch.from_numpy(np.flatnonzero((dy == i) & (dx == j)))
            out[sel] = padded[sel, :, i : i + x.shape[2], j : j + x.shape[3]]
    order = torch.from_numpy(rng.permutation(n))
    for s in range(0, n, bs):
        idx = order[s : s + bs]
        yield out[idx], y[idx]


def tta_logits(torch, net, x, bs=2000):
    """The paper's level-2 TTA: the mirror average, weighted 0.5, plus the mirror average of
    the image translated one pixel up-left and down-right (reflect padding), 0.25 each."""
    outs = []
    with torch.no_grad():
        for s in range(0, len(x), bs):
            xb = x[s : s + bs]

            def mirror(z):
                return 0.5 * (net(z) + net(z.flip(3)))

            padded = torch.nn.functional.pad(xb, (1,) * 4, mode="reflect")
            up, down = padded[:, :, :-2, :-2], padded[:, :, 2:, 2:]
            outs.append(0.5 * mirror(xb) + 0.25 * mirror(up) + 0.25 * mirror(down))
    return torch.cat(outs)


def plain_logits(torch, net, x, bs=2000):
    with torch.no_grad():
        return torch.cat([net(x[s : s + bs]) for s in range(0, len(x), bs)])


def train(d, epochs: float, seed: int = 0, bf16: bool = False, widths=None, log=print) -> dict:
    """Train airbench94 (`widths`: the paper's 64/256/256 unless given) on `d` (an ArrayData:
    uint8 NHWC) for `epochs`; the accuracies."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    to = {"memory_format": torch.channels_last}

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).float().div(255)

    x_train, x_val, x_test = tensor(d.x_train), tensor(d.x_val), tensor(d.x_test)
    mean, std = x_train.mean((0, 2, 3), keepdim=True), x_train.std((0, 2, 3), keepdim=True)
    x_train, x_val, x_test = [((v - mean) / std).contiguous(**to) for v in (x_train, x_val, x_test)]
    y_train = torch.from_numpy(d.y_train.astype("int64"))

    net = build(torch, nn, widths or HYP["widths"]).to(**to)
    whitening(torch, net[0], x_train[:5000])
    bs = HYP["batch_size"]
    steps_per_epoch = math.ceil(len(x_train) / bs)
    total = math.ceil(epochs * steps_per_epoch)
    kilostep = 1024 * (1 + 1 / (1 - HYP["momentum"]))
    lr, wd = HYP["lr"] / kilostep, HYP["weight_decay"] * bs / kilostep
    lr_b = lr * HYP["bias_scaler"]
    norm_biases = [p for n, p in net.named_parameters() if isinstance(net[int(n.split(".")[0])], nn.BatchNorm2d)]
    norm_ids = {id(p) for p in norm_biases}
    others = [p for p in net.parameters() if id(p) not in norm_ids and p is not net[0].weight]
    opt = torch.optim.SGD(
        [
            {"params": norm_biases, "lr": lr_b, "weight_decay": wd / lr_b},
            {"params": others, "lr": lr, "weight_decay": wd / lr},
        ],
        momentum=HYP["momentum"],
        nesterov=True,
    )

    def triangle(step):  # 0.2 -> 1 at 23% of the steps -> 0.07 at the end
        f = step / total
        return 0.2 + 0.8 * f / 0.23 if f < 0.23 else 1 + (0.07 - 1) * (f - 0.23) / 0.77

    sched = torch.optim.lr_scheduler.LambdaLR(opt, triangle)
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    loss_fn = nn.CrossEntropyLoss(label_smoothing=HYP["label_smoothing"], reduction="sum")
    mask = rng.random(len(x_train)) < 0.5
    step, t0, history, averaged = 0, time.perf_counter(), [], False

    def lookahead(decay):
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].lerp_(v, 1 - decay)
                    v.copy_(ema[k])

    for epoch in range(math.ceil(epochs)):
        net[0].bias.requires_grad = epoch < HYP["whiten_bias_epochs"]
        net.train()
        for xb, yb in batches(torch, x_train, y_train, epoch, mask, rng, bs, HYP["translate"]):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = net(xb) * HYP["scaling_factor"]
            loss = loss_fn(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 5 == 0:
                lookahead(0.95**5 * (step / total) ** 3)
                averaged = True
            if step >= total:
                break
        net.eval()
        val = (plain_logits(torch, net, x_val).argmax(1).numpy() == d.y_val).mean()
        history.append({"epoch": epoch + 1, "seconds": time.perf_counter() - t0, "val_accuracy": float(val)})
        log(json.dumps(history[-1]))
        if step >= total:
            break
    if averaged:  # the weights become the average (a run of under 5 steps has none)
        lookahead(1.0)
    net.eval()

    def acc(x, y, tta):
        logits = tta_logits(torch, net, x) if tta else plain_logits(torch, net, x)
        return float((logits.argmax(1).numpy() == y).mean())

    return {
        "epochs": epochs,
        "seed": seed,
        "bf16": bf16,
        "train_seconds": time.perf_counter() - t0,
        "val_accuracy_tta": acc(x_val, d.y_val, True),
        "test_accuracy_tta": acc(x_test, d.y_test, True),
        "test_accuracy": acc(x_test, d.y_test, False),
        "history": history,
    }


def main(argv=None):
    p = argparse.ArgumentParser("python -m benchmarks.airbench_torch", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (AMX on the CPUs that have it)")
    p.add_argument("--quick", action="store_true", help="5,000 training images, 4 epochs")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    from keras_cases.data import images

    d = images.load_cifar10()
    if args.quick:
        d = images.per_class(d, 500)
        args.epochs = 4.0
    r = train(d, args.epochs, args.seed, args.bf16)
    print(json.dumps({k: v for k, v in r.items() if k != "history"}))
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()

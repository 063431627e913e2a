"""The benchmark harness runs end to end (a smoke run: it asserts that the harness works
and reports sane numbers, not how fast anything is)."""

import json

import numpy as np
import pytest
from conftest import ROOT, backends_under_test, check, run_python


def test_quick_benchmark_writes_results(tmp_path):
    bs = backends_under_test()
    p = check(
        run_python(["-m", "benchmarks", "--quick", "--backends", ",".join(bs), "--out", str(tmp_path)], timeout=900)
    )
    md = next(tmp_path.glob("*-quick.md"))
    data = json.loads(md.with_suffix(".json").read_text())
    assert md.with_suffix(".png").stat().st_size > 1000
    assert set(data["results"]) == set(bs) and data["cases"] == ["churn", "spam", "cifar"]
    runners = {r["runner"] for r in data["rows"]}
    assert {f"keras/{b}" for b in bs} <= runners
    if "jax" in bs:
        assert "raw jax" in runners and all(r["vs_raw_jax"] > 0 for r in data["rows"])
        assert any(r["config"].startswith("spe=epoch") for r in data["rows"] if r["runner"] == "keras/jax")
        # the ratio behind the 1.3x target: raw loop and Keras measured in alternation, at 64 and 256
        ab = data["interleaved"]
        assert {(r["runner"], r["batch_size"]) for r in ab} == {
            (n, b) for n in ("raw jax", "keras/jax") for b in (64, 256)
        }
        assert all(r["vs_raw_jax"] > 0 and len(r["epoch_s_all"]) >= 2 for r in ab)
        assert data["targets"]["ratio"]["per_batch"] and "within 1.3x of the raw JAX loop" in md.read_text()
    for r in data["rows"] + data["sweep"]:
        assert r["epoch_s"] > 0 and r["samples_per_s"] > 0 and r["epoch_s_min"] <= r["epoch_s"] <= r["epoch_s_max"]
    # the batch-size sweep: each backend's fastest configuration at 64 and again at 256
    assert {(r["runner"], r["batch_size"]) for r in data["sweep"]} >= {(f"keras/{b}", n) for b in bs for n in (64, 256)}
    # time to quality: one row per case and backend; a reached target has its time, within the cap
    ttq = {(r["case"], r["backend"]): r for r in data["time_to_quality"]}
    assert set(ttq) == {(c, b) for c in ("churn", "spam", "cifar") for b in bs}
    for r in ttq.values():
        assert r["reached"] == (r["seconds"] is not None) and r["epochs_run"] == len(r["trace"]) >= 1
        if r["reached"]:
            assert 0 < r["seconds"] <= r["cap_s"] and r["trace"][r["epochs"] - 1][2] >= r["target"]
            assert all(v is None or v < r["target"] for _, _, v in r["trace"][: r["epochs"] - 1])
    # spam: steps_per_execution 1 and 32 (PyTorch: 1 only)
    spe = {(r["backend"], r["spe"]) for r in data["spam_spe"]}
    assert spe == {(b, s) for b in bs for s in ((1,) if b == "torch" else (1, 32))}
    text = md.read_text()
    for heading in ("## Targets", "## Time to quality", "| runner | config |", "steps_per_execution 1 vs 32"):
        assert heading in text
    assert "wrote" in p.stdout


def test_unknown_case_is_one_clear_error():
    p = run_python(["-m", "benchmarks", "--cases", "churn,mnist"], timeout=120)
    assert p.returncode == 2 and "unknown mnist" in p.stderr and "Traceback" not in p.stderr


def test_quick_cifar_throughput_writes_results(tmp_path):
    from conftest import ROOT  # noqa: F401  (the harness runs from the project root)

    b = backends_under_test()[0]
    check(run_python(["-m", "benchmarks.cifar", "--quick", "--backends", b, "--out", str(tmp_path)], timeout=600))
    data = json.loads(next(tmp_path.glob("*-cifar-quick.json")).read_text())[b]
    assert data["policy"] == "float32" and data["devices"]
    if b in ("jax", "torch"):  # the hand-written loop ran beside Keras, and the table says so
        assert data["raw_images_per_s"] > 0 and data["raw_runner"] == f"raw {b}"
        assert f"(raw {b}) |" in next(tmp_path.glob("*-cifar-quick.md")).read_text()
    from benchmarks.cifar import forward_flops
    from keras_cases.cifar import Recipe, build_model

    # the FLOP count by hand for the whitening layer + first conv of the default network
    m = build_model(Recipe())
    first_two = 2 * 31 * 31 * 24 * (2 * 2 * 3) + 2 * 31 * 31 * 32 * (3 * 3 * 24)
    assert forward_flops(m) > first_two and data["train_flops_per_image"] == 3 * forward_flops(m)
    assert data["images_per_s"] > 0 and data["matmul_peak_gflops"] > 0
    assert data["achieved_gflops"] == pytest.approx(data["images_per_s"] * data["train_flops_per_image"] / 1e9)


def test_results_go_to_the_working_directory_not_the_package(tmp_path, monkeypatch):
    """An installed package's folder is no place for a user's results: without --out they go
    to ./benchmarks-results/ (every benchmark command), and --render writes beside the .json
    it renders."""
    import benchmarks.__main__ as bench

    monkeypatch.chdir(tmp_path)
    assert bench.results_dir(None).resolve() == tmp_path / "benchmarks-results"
    assert bench.results_dir(None).resolve() != (ROOT / "benchmarks" / "results").resolve()
    src = tmp_path / "saved" / "linux-x86_64-2cpu.json"
    src.parent.mkdir()
    src.write_text((ROOT / "benchmarks" / "results" / "linux-x86_64-2cpu.json").read_text())
    check(run_python(["-m", "benchmarks", "--render", str(src)], cwd=tmp_path))
    md = (src.parent / "linux-x86_64-2cpu.md").read_text()
    assert "jax" in md and "|" in md and (src.parent / "linux-x86_64-2cpu.png").stat().st_size > 1000
    assert not (tmp_path / "benchmarks-results").exists()


def test_device_script_records_a_step_over_its_limit_and_keeps_earlier_results(tmp_path):
    """benchmarks.device gives each step its share of --minutes: a step that overruns is
    stopped and recorded, the script goes on, and its section is appended to the machine's
    results file without touching what was there."""
    from benchmarks.__main__ import machine

    b = backends_under_test()[0]
    md = tmp_path / f"{machine()}.md"
    md.write_text("# earlier results\n\n| kept | table |\n")
    proc = check(run_python(["-m", "benchmarks.device", "--backends", b, "--minutes", "0.05", "--out", str(tmp_path)]))
    text = md.read_text()
    assert text.startswith("# earlier results\n\n| kept | table |\n\n## Device run, ")
    assert text.count("over the 1 s limit") == 3, text  # time to quality, float32 and mixed throughput
    assert f"| {b} | mixed |" in text and f"| {b} | float32 |" in text
    raw = json.loads(next(tmp_path.glob(f"{machine()}-device-*.json")).read_text())
    assert set(raw["throughput"]) == {f"{b}-float32", f"{b}-mixed"} and raw["ttq"][b]["result"] == {}
    assert "appended to" in proc.stdout


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_the_raw_cifar_step_is_keras_step(framework, tmp_path):
    """benchmarks/raw_cifar.py writes the recipe's network and step by hand (jax.jit +
    lax.conv + optax; torch.nn.functional): from the same weights and batch it gives Keras'
    loss, and after two SGD-Nesterov steps with weight decay the same weights (float32,
    relative 1e-5), so the benchmark compares the same work."""
    if framework not in backends_under_test():
        pytest.fail(f"{framework} is not installed: the raw {framework} loop cannot be checked")
    out = tmp_path / "parity.json"
    check(run_python([str(ROOT / "tests" / "scripts" / "raw_cifar_parity.py"), str(out)], backend=framework))
    r = json.loads(out.read_text())
    assert abs(r["loss"] - r["keras_loss"]) < 1e-5 * r["keras_loss"]
    assert len(r["rel_diff"]) >= 10 and max(r["rel_diff"].values()) < 1e-5, r["rel_diff"]
    assert r["moved"] > 1e-3  # the steps did change the weights (the comparison is not of two idle models)


def test_mixed_precision_throughput_runs_in_bfloat16_or_float16():
    import keras

    from benchmarks.cifar import worker

    try:
        data = worker(1, 1, 8, mixed_precision=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert data["mixed_precision"] and data["policy"] in ("mixed_bfloat16", "mixed_float16")
    assert data["raw_images_per_s"] is None  # no float32 raw loop beside a mixed-precision Keras run


def _patches(x, k: int, pad: str):
    """(n, h', w', k*k, c) windows of NHWC `x` (stride 1), zero-padded for "SAME"."""
    if pad == "SAME":
        x = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
    return np.stack([x[:, i : i + h, j : j + w] for i in range(k) for j in range(k)], axis=3)


def _conv(x, kernel, pad):
    k, _, cin, cout = kernel.shape
    return np.einsum("nhwpc,pco->nhwo", _patches(x, k, pad), kernel.reshape(k * k, cin, cout))


@pytest.mark.parametrize(("pad", "k"), [("SAME", 3), ("VALID", 2)])
def test_profiled_conv_ops_are_the_convolution_and_its_two_gradients(pad, k):
    """benchmarks/profile_conv.py times each framework's forward, backward-data and
    backward-filter conv kernels: on tiny shapes each equals a NumPy reference (the filter
    gradient summed from the input windows by hand, itself checked by a central difference of
    the loss sum(conv(x, k) * dy), which is linear in k), in every layout the profile times."""
    from benchmarks.profile_conv import conv_numpy

    rng = np.random.default_rng(0)
    x, kernel = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((k, k, 3, 4))
    y = _conv(x, kernel, pad)
    dy = rng.standard_normal(y.shape)
    dk = np.einsum("nhwpc,nhwo->pco", _patches(x, k, pad), dy).reshape(kernel.shape)
    u, v, eps = rng.standard_normal(kernel.shape), rng.standard_normal(x.shape), 1e-3
    loss_k = [np.sum(_conv(x, kernel + s * eps * u, pad) * dy) for s in (1, -1)]
    assert np.sum(dk * u) == pytest.approx((loss_k[0] - loss_k[1]) / (2 * eps), rel=1e-7)
    loss_x = [np.sum(_conv(x + s * eps * v, kernel, pad) * dy) for s in (1, -1)]
    cases = {"jax": ("NHWC", "NCHW"), "tensorflow": ("NHWC",), "torch": ("NCHW",)}
    f32 = [a.astype("float32") for a in (x, kernel, dy)]
    for fw in backends_under_test():
        for layout in cases[fw]:
            got = {op: conv_numpy(fw, op, pad, *f32, layout=layout) for op in ("fwd", "bwd_data", "bwd_filter")}
            np.testing.assert_allclose(got["fwd"], y, rtol=1e-4, atol=1e-4, err_msg=f"{fw} {layout}")
            np.testing.assert_allclose(got["bwd_filter"], dk, rtol=1e-4, atol=1e-4, err_msg=f"{fw} {layout}")
            assert got["bwd_data"].shape == x.shape
            fd = (loss_x[0] - loss_x[1]) / (2 * eps)
            assert np.sum(got["bwd_data"] * v) == pytest.approx(fd, rel=1e-4), (fw, layout)


def test_conv_profile_times_every_op_of_the_cifar_step(tmp_path):
    """The profile's op list is the recipe network's (each conv's input and kernel shape, each
    batch norm's input), and one measured run at batch 2 gives a time for every op and a
    report table with every op and layer in it."""
    from benchmarks import profile_conv as pc
    from keras_cases.cifar import Recipe, build_model

    model, ops = build_model(Recipe()), pc.network()
    for kind in ("Conv2D", "BatchNormalization"):
        layers = {lay.name: lay for lay in model.layers if type(lay).__name__ == kind}
        specs = {s["layer"]: s for s in ops if s["op"] == ("fwd" if kind == "Conv2D" else "bn")}
        assert set(specs) == set(layers)
        for name, s in specs.items():
            assert s["shape"] == tuple(layers[name].input.shape[1:]), name
            if kind == "Conv2D":
                assert (s["k"], s["k"], s["shape"][2], s["cout"]) == tuple(layers[name].kernel.shape)
    # one framework's run (PyTorch's where it is under test: no compiling, the quickest)
    b = "torch" if "torch" in backends_under_test() else backends_under_test()[0]
    _, variant, env, layout, dtype, threads, what = next(v for v in pc.VARIANTS if v[:2] == (b, "default"))
    rows = pc.measure(b, variant, layout, dtype, threads, what, batch=2, repeats=1)
    assert all("error" not in r and r["median_s"] > 0 for r in rows), rows
    assert [r["op"] for r in rows] == [s["op"] for s in ops] + ["optimizer", "step"]
    for r in rows:
        if r["op"] in pc.CONV_OPS:
            assert r["flops"] > 0 and r["gflops"] == pytest.approx(r["flops"] / r["median_s"] / 1e9)
    result = {"framework": b, "variant": variant, "env": env, "rows": rows, "batch": 2, "load_start": 0.0}
    load = {"min": 0.0, "median": 0.0, "max": 0.0}
    text = pc.write_report(tmp_path, [result], load, 2, 1, "profile").read_text()
    for op in (*pc.CONV_OPS, *pc.OTHER_OPS, "optimizer", "sum of the parts", "whole step"):
        assert f"| {op} | " in text, op
    assert all(f"| {s['layer']} | " in text for s in ops if s["op"] == "fwd")
    assert f"| {b} | default | - | " in text and f"- Fastest whole step: {b}" in text

"""The benchmark harness runs end to end (a smoke run: it asserts that the harness works
and reports sane numbers, not how fast anything is)."""

import json

import pytest

from conftest import backends_under_test, check, run_python


def test_quick_benchmark_writes_results(tmp_path):
    bs = backends_under_test()
    p = check(run_python(["-m", "benchmarks", "--quick", "--backends", ",".join(bs), "--out", str(tmp_path)],
                         timeout=900))
    md = next(tmp_path.glob("*-quick.md"))
    data = json.loads(md.with_suffix(".json").read_text())
    assert md.with_suffix(".png").stat().st_size > 1000
    assert set(data["results"]) == set(bs)
    runners = {r["runner"] for r in data["rows"]}
    assert {f"keras/{b}" for b in bs} <= runners
    if "jax" in bs:
        assert "raw jax" in runners and all(r["vs_raw_jax"] > 0 for r in data["rows"])
    for r in data["rows"]:
        assert r["epoch_s"] > 0 and r["samples_per_s"] > 0 and r["epoch_s_min"] <= r["epoch_s"] <= r["epoch_s_max"]
    assert "| runner | config |" in md.read_text() and "wrote" in p.stdout


def test_quick_cifar_throughput_writes_results(tmp_path):
    from conftest import ROOT  # noqa: F401  (the harness runs from the project root)

    b = backends_under_test()[0]
    check(run_python(["-m", "benchmarks.cifar", "--quick", "--backends", b, "--out", str(tmp_path)], timeout=600))
    data = json.loads(next(tmp_path.glob("*-cifar-quick.json")).read_text())[b]
    from keras_cases.cifar import Recipe, build_model
    from benchmarks.cifar import forward_flops

    # the FLOP count by hand for the whitening layer + first conv of the default network
    m = build_model(Recipe())
    first_two = 2 * 31 * 31 * 24 * (2 * 2 * 3) + 2 * 31 * 31 * 32 * (3 * 3 * 24)
    assert forward_flops(m) > first_two and data["train_flops_per_image"] == 3 * forward_flops(m)
    assert data["images_per_s"] > 0 and data["matmul_peak_gflops"] > 0
    assert data["achieved_gflops"] == pytest.approx(data["images_per_s"] * data["train_flops_per_image"] / 1e9)

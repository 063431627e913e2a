"""The benchmark harness runs end to end (a smoke run: it asserts that the harness works
and reports sane numbers, not how fast anything is)."""

import json

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

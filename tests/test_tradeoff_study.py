"""scripts/tradeoff_study.py on tiny settings: it trains kl_pg and Q, evaluates them, and writes
the per-run results, the summary with the dominance check and the plot (a run whose result file
exists is not run again)."""

from __future__ import annotations

import json
import os


def test_tiny_study_writes_runs_summary_and_plot(tmp_path, capsys, load_script):
    threads_before = os.environ.get("NUMBA_NUM_THREADS")
    script = load_script("tradeoff_study")
    assert os.environ.get("NUMBA_NUM_THREADS") == threads_before  # importing it sets nothing
    out = tmp_path / "study"
    argv = ["--out", str(out), "--steps", "8192", "--seeds", "1", "--compositions", "64",
            "--algorithms", "kl_pg", "q", "--c-values", "2", "--kl-values", "5",
            "--workers", "1"]  # fmt: skip
    script.main(argv)
    runs = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert runs == ["kl_pg_kl_coef_5_seed0.json", "q_reward_scaler_2_seed0.json"]
    for name in runs:
        row = json.loads((out / "runs" / name).read_text())
        assert 0 <= row["rows"] <= 11 and len(row["table1"]) == 11
        assert row["kl"] >= 0 and row["mean_log_p"] < 0 and row["compositions"] == 64
        assert 0 < row["distinct8"] <= 1 and 0 <= row["interval_tv"] <= 1
    assert (out / "runs" / "kl_pg_kl_coef_5_seed0.safetensors").is_file()  # for --acceptance
    summary = (out / "summary.md").read_text()
    assert "| KL-PG | kl_coef | 5 | 1 |" in summary and "| Q | reward_scaler | 2 | 1 |" in summary
    assert "- Q c=2 (KL " in summary  # the dominance check names every baseline point
    assert list(out.glob("tradeoff*.png"))
    # a second call finds both results and only re-summarises
    before = (out / "runs" / runs[0]).stat().st_mtime_ns
    capsys.readouterr()
    script.main(argv)
    assert (out / "runs" / runs[0]).stat().st_mtime_ns == before
    assert "2 runs; summary in" in capsys.readouterr().out

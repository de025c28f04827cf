"""scripts/reproduce_table1.py on tiny settings: it tunes every algorithm on several seeds,
evaluates them, and rewrites only the README's marked Results block."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rltuner.errors import RltunerError
from rltuner.metrics import TABLE1_ROWS

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_has_one_generated_block(load_script):
    script = load_script("reproduce_table1")
    text = (ROOT / "README.md").read_text()
    assert text.count(script.BEGIN) == 1 and text.count(script.END) == 1
    assert text.index(script.BEGIN) < text.index(script.END)


def test_tiny_reproduction_regenerates_the_block(tmp_path, tiny_note_rnn, monkeypatch, load_script):
    script = load_script("reproduce_table1")
    readme = tmp_path / "README.md"
    before, after = "# title\n\nintro text\n\n", "\n\nclosing text\n"
    readme.write_text(f"{before}{script.BEGIN}\nSTALE TABLE\n{script.END}{after}")
    monkeypatch.setenv("RLTUNER_TABLE1_COMPOSITIONS", "48")  # the environment sets defaults
    code = script.main([
        "--seeds", "0,1", "--steps", "256", "--note-rnn", str(tiny_note_rnn),
        "--tune-args", "--num-envs 8 --memory-size 1000 --final-compositions 16 --num-samples 1",
        "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--readme", str(readme),
    ])  # fmt: skip
    assert code == 0
    text = readme.read_text()
    assert "STALE" not in text
    assert text.startswith(before + script.BEGIN + "\n") and text.endswith(script.END + after)
    block = text[text.index(script.BEGIN) : text.index(script.END)]
    assert block == script.BEGIN + "\n" + (tmp_path / "out" / "table1.md").read_text()
    for row in TABLE1_ROWS:
        assert f"| {row} |" in block
    assert "| Metric | Note RNN (untuned) | q (Q) | psi (Ψ) | g (G) | pure_rl (RL only) |" in block
    assert "256 steps per run, seeds 0, 1; 48 sampled compositions per model" in block
    assert " ± " in block  # two seeds: a spread
    summary = json.loads((tmp_path / "out" / "table1.json").read_text())
    assert set(summary["rows_met_vs_paper_q"]) == {"note_rnn", "q", "psi", "g", "pure_rl"}
    assert all(len(v) == 2 for k, v in summary["rows_met_vs_paper_q"].items() if k != "note_rnn")
    assert "per seed: untuned Note RNN" in block
    for alg in ("q", "psi", "g", "pure_rl"):
        for seed in (0, 1):
            cfg = json.loads((tmp_path / "runs" / f"{alg}_seed{seed}" / "config.json").read_text())
            assert (cfg["algorithm"], cfg["seed"], cfg["steps"]) == (alg, seed, 256)
    # the two seeds' runs differ (a spread over identical runs would say nothing)
    assert any(len(set(vals["q"])) == 2 for vals in summary["rows"].values())


def test_a_readme_without_the_markers_is_refused(tmp_path, load_script):
    script = load_script("reproduce_table1")
    readme = tmp_path / "README.md"
    readme.write_text("no block here\n")
    with pytest.raises(RltunerError, match="needs exactly one block"):
        script.replace_block(readme, "table\n")
    assert readme.read_text() == "no block here\n"


def test_cells_show_mean_and_spread(load_script):
    script = load_script("reproduce_table1")
    assert script._cell([0.70, 0.72, 0.74], percent=True) == "72.0% ± 2.0"
    assert script._cell([-0.10, -0.20, -0.30], percent=False) == "−0.20 ± 0.10"
    assert script._cell([0.5], percent=True) == "50.0%"
    assert script._cell([0.000464], percent=True) == "0.0464%"
    assert script._cell([1.0, 1.0], percent=True) == "100% ± 0"
    assert script._cell([float("nan")], percent=False) == "n/a"

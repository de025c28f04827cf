"""Plots and the self-contained HTML report (rltuner.report), checked in headless Chromium
when it is installed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from rltuner.cli import main
from rltuner.errors import RltunerError
from rltuner.evaluate import evaluate_models
from rltuner.harmony import Chord, Progression
from rltuner.report import (
    plot_comparison,
    plot_distributions,
    plot_note_probabilities,
    plot_piano_rolls,
    plot_training,
    plot_training_run,
    read_history,
    write_report,
)


def _history_rows(n: int = 4) -> list[dict]:
    return [{"step": 1000 * (i + 1), "train/reward": -3.0 + 0.2 * i,
             "train/music_theory_reward": -0.5 + 0.1 * i, "train/note_rnn_log_p": -2.5,
             "eval/log_p_plus_music_theory": -2.9 + 0.2 * i,
             "eval/music_theory_reward": -0.4 + 0.1 * i,
             "eval/note_rnn_log_p": -2.5, "losses/mean_target": -4.0 + i}
            for i in range(n)]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tiny_note_rnn, tmp_path_factory) -> Path:
    """A finished-looking run: config.json, metrics.jsonl (last line truncated, as after a
    crash) and tuned.safetensors (the tiny Note RNN, perturbed)."""
    from rltuner.tuner import RLTuner, TunerConfig

    cfg = TunerConfig(algorithm="q", note_rnn=str(tiny_note_rnn), steps=4000, num_notes=16)
    tuner = RLTuner(cfg)
    q = tuner.q_network
    q.theta += np.random.default_rng(0).normal(0, 0.3, q.theta.shape).astype(np.float32)
    run = tmp_path_factory.mktemp("runs") / "my_run"
    run.mkdir()
    tuner.save(run / "tuned.safetensors")
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    lines = [json.dumps(r) for r in _history_rows()]
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 50')
    return run


def test_read_history_and_training_plots(run_dir, tmp_path):
    assert [r["step"] for r in read_history(run_dir)] == [1000, 2000, 3000, 4000]
    paths = plot_training_run(run_dir, tmp_path / "png")
    assert [p.name for p in paths] == ["training_rewards.png", "evaluation_rewards.png",
                                       "target_values.png"]  # fmt: skip
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    svgs = plot_training_run(run_dir, tmp_path / "svg", fmt="svg")
    assert all(p.suffix == ".svg" and b"<svg" in p.read_bytes()[:400] for p in svgs)
    with pytest.raises(RltunerError, match="no training log"):
        plot_training_run(tmp_path)


def test_note_probability_heatmap_and_piano_rolls(tmp_path):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(38), size=20)
    melody = probs.argmax(axis=1)
    p = plot_note_probabilities(probs, melody, tmp_path / "heat.png")
    assert p.read_bytes()[:4] == b"\x89PNG"
    s = plot_note_probabilities(probs, melody, tmp_path / "heat.svg")
    assert b"<svg" in s.read_bytes()[:400]
    with pytest.raises(ValueError):
        plot_note_probabilities(probs[:, :10], melody, tmp_path / "bad.png")
    mels = [np.array([14, 1, 16, 0, 18, 1, 1, 1]), np.array([0, 1, 1, 1])]  # one silent
    r = plot_piano_rolls(mels, tmp_path / "rolls.png", titles=["a", "b"])
    assert r.stat().st_size > 1000
    with pytest.raises(ValueError):
        plot_piano_rolls([], tmp_path / "none.png")


def test_comparison_bar_chart(tiny_note_rnn, tmp_path):
    comp = evaluate_models([str(tiny_note_rnn)], compositions=100, num_notes=16)
    assert plot_comparison(comp, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    svg = plot_comparison(comp, tmp_path / "c.svg", paper=True)
    assert b"<svg" in svg.read_bytes()[:400]
    dist = plot_distributions(comp, tmp_path / "d.svg")
    text = dist.read_text()
    assert "<svg" in text[:400] and "Melodic intervals" in text and "position in the bar" in text


@pytest.fixture(scope="module")
def report(run_dir, tiny_note_rnn) -> Path:
    return write_report(run_dir, compare=[f"other={tiny_note_rnn}"], n_samples=2,
                        compositions=200, synth="builtin")  # fmt: skip


def test_report_is_self_contained(report, run_dir):
    assert report == run_dir / "report.html"
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>")
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(imgs) >= 3 + 2 + 1 + 2 * 3  # curves, 2 charts, heatmap, 2 rolls x 3 models
    assert all(s.startswith("data:image/png;base64,") for s in imgs)
    audios = re.findall(r'<audio controls[^>]*src="([^"]+)"', text)
    assert len(audios) == 2 * 3 and all(a.startswith("data:audio/wav;base64,") for a in audios)
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing from the network
    for needle in ("Configuration", "Notes excessively repeated", "paper Ψ", "my_run (Q)",
                   "other (Note RNN)", "data-check", "Distinct 8-step openings",
                   "Most common first bar", "per step under the corpus trigram"):  # fmt: skip
        assert needle in text


def test_report_errors(tmp_path):
    with pytest.raises(RltunerError, match="no such run"):
        write_report(tmp_path / "nope")
    with pytest.raises(RltunerError, match="no tuned model"):
        write_report(tmp_path)


def test_cli_report(run_dir, tmp_path):
    out = tmp_path / "r.html"
    rc = main(["report", str(run_dir), "--out", str(out), "--samples", "1", "--compositions",
               "100", "--synth", "builtin", "--quiet"])  # fmt: skip
    assert rc == 0 and out.stat().st_size > 10_000
    assert main(["report", str(tmp_path / "missing")]) == 2


NO_CHROMIUM = shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists()


@pytest.mark.skipif(NO_CHROMIUM, reason="headless Chromium not installed (apt install chromium)")
def test_report_in_headless_chromium(report, tmp_path, load_script):
    record = load_script("check_report_chromium").check_report(
        report, screenshot=tmp_path / "shot.png"
    )
    assert record["ok"], record
    assert record["images_decoded"] == record["images"] >= 10
    assert record["audio_with_duration"] == record["audio"] == 6
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"


def _figures(monkeypatch) -> dict:
    """Capture the figures the plotting functions save, by file stem."""
    import rltuner.report as report_mod

    figs: dict = {}
    real = report_mod._save

    def keep(fig, path, fmt):
        figs[Path(path).stem] = fig
        real(fig, path, fmt)

    monkeypatch.setattr(report_mod, "_save", keep)
    return figs


def test_training_plots_have_units_robust_limits_and_one_meaning_of_total(tmp_path, monkeypatch):
    figs = _figures(monkeypatch)
    # a G-like run: trained on c*r_MT alone (reward == music theory); first window far off
    windows = [(-50.0, -137.0), (1.0, -1.0), (1.2, -0.8), (1.1, -0.9)]
    rows = [{"step": 1000 * (i + 1), "train/reward": r, "train/music_theory_reward": r,
             "train/note_rnn_log_p": -2.0, "eval/log_p_plus_music_theory": e,
             "eval/music_theory_reward": e + 2.0, "eval/note_rnn_log_p": -2.0,
             "losses/mean_target": 1.0}
            for i, (r, e) in enumerate(windows)]  # fmt: skip
    plot_training(rows, tmp_path)
    for name, fig in figs.items():
        assert fig.axes[0].get_ylabel().strip(), f"{name}: no y-axis label"
    ev = figs["evaluation_rewards"].axes[0]
    lo, hi = ev.get_ylim()
    assert lo > -10 and hi < 5  # the first window (-137) does not set the scale
    assert any("off scale" in t.get_text() for t in ev.texts)
    tr = figs["training_rewards"].axes[0]
    labels = [line.get_label() for line in tr.get_lines()]
    assert len(labels) == 2  # reward == music theory: one line with both names, not hidden
    assert any("reward maximised" in lab and "music theory" in lab for lab in labels)
    assert "log p(a|s) + c·r_MT" in [line.get_label() for line in ev.get_lines()]


def test_old_logs_are_read_under_the_new_names(tmp_path):
    old = [{"step": 1000, "train/total_reward": 1.0, "eval/total_reward": -2.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    (row,) = read_history(tmp_path)
    assert row == {"step": 1000, "train/reward": 1.0, "eval/log_p_plus_music_theory": -2.0}


def test_piano_roll_ticks_are_note_names(tmp_path, monkeypatch):
    figs = _figures(monkeypatch)
    plot_piano_rolls([np.array([2, 1, 7, 1, 11, 0, 14, 1])], tmp_path / "roll.png")
    fig = figs["roll"]
    fig.canvas.draw()
    names = [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert names and all(n[0] in "CDEFGAB" and n[-1].isdigit() for n in names), names
    assert all(float(v).is_integer() for v in fig.axes[0].get_yticks())


def test_report_page_has_a_margin():
    from rltuner.report import _CSS

    body = _CSS[_CSS.index("body {") :].split("}")[0]
    assert "padding: 0 1.5em" in body


# ----------------------------------------------------------------------------- chords

CHORDS = Progression(
    (Chord("C", 0, (0, 4, 7), 0), Chord("G7", 7, (7, 11, 2, 5), 7),
     Chord("Am", 9, (9, 0, 4), 9), Chord("F/A", 5, (5, 9, 0), 9)),
    (4, 4, 4, 4),
)  # fmt: skip


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_piano_rolls_show_chord_symbols(tmp_path, monkeypatch):
    figs = _figures(monkeypatch)
    mels = [np.array([14, 1, 16, 0, 18, 1, 1, 1, 21, 1, 19, 1, 18, 1, 16, 1]),
            np.array([19, 1, 1, 1, 18, 16, 14, 1])]  # fmt: skip
    plot_piano_rolls(mels, tmp_path / "plain.png")
    assert _texts(figs["plain"]) == []
    plot_piano_rolls(mels, tmp_path / "chords.png", chords=CHORDS.spans(16))
    fig = figs["chords"]
    assert [t.get_text() for t in fig.axes[0].texts] == ["C", "G7", "Am", "F/A"]
    assert [t.get_text() for t in fig.axes[1].texts] == ["C", "G7", "Am", "F/A"]
    # each symbol at its span's start; a line at each change (steps 4, 8, 12)
    assert [round(t.get_position()[0]) for t in fig.axes[0].texts] == [0, 4, 8, 12]
    assert {4.0, 8.0, 12.0} <= {line.get_xdata()[0] for line in fig.axes[0].get_lines()
                                if line.get_linestyle() == "--"}  # fmt: skip
    # one list per melody
    other = CHORDS.spans(8)[:1]
    plot_piano_rolls(mels, tmp_path / "each.png", chords=[CHORDS.spans(16), other])
    assert [t.get_text() for t in figs["each"].axes[1].texts] == ["C"]
    with pytest.raises(ValueError, match="2 chord lists for 1 melodies"):
        plot_piano_rolls(mels[:1], tmp_path / "bad.png", chords=[other, other])


def test_report_with_chords_shows_symbols_and_plays_them(run_dir, tmp_path, monkeypatch):
    figs = _figures(monkeypatch)
    kw = dict(n_samples=1, compositions=50, synth="builtin")
    plain = write_report(run_dir, out=tmp_path / "plain.html", **kw).read_text()
    assert "Chord spans" not in plain
    roll_texts = [_texts(f) for k, f in figs.items() if k.startswith("roll_")]
    assert roll_texts and all(t == [] for t in roll_texts)
    figs.clear()
    text = write_report(run_dir, out=tmp_path / "chords.html", chords=CHORDS,
                        chord_style="arpeggio", **kw).read_text()  # fmt: skip
    assert "<b>C G7 Am F/A</b>" in text and "Chord spans" in text and "arpeggio" in text
    rolls = {k: _texts(f) for k, f in figs.items() if k.startswith("roll_")}
    assert len(rolls) == 2 and all(t == ["C", "G7", "Am", "F/A"] for t in rolls.values())
    players = [re.findall(r'<audio controls[^>]*src="([^"]+)"', t) for t in (plain, text)]
    assert len(players[0]) == len(players[1]) == 2
    assert all(a != b for a, b in zip(*players, strict=True))  # the chords are heard
    with pytest.raises(RltunerError, match="unknown chord style 'strum'"):
        write_report(run_dir, out=tmp_path / "x.html", chords=CHORDS, chord_style="strum")

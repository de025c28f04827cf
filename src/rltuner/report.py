"""Plots of a run (reading logs and results, never training)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rltuner.checkpoint import atomic_path

__all__ = ["plot_training"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(history: Sequence[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["step"], r[key]) for r in history if key in r]
    if not rows:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(rows, dtype=np.float64)
    return a[:, 0], a[:, 1]


def _save(fig, path: Path, fmt: str) -> None:
    with atomic_path(path, suffix=f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight")


def plot_training(
    history: Sequence[dict], out_dir: str | os.PathLike, fmt: str = "png"
) -> list[Path]:
    """Training rewards (total / music theory / Note RNN), evaluation rewards and mean target
    values per log window, as three images in ``out_dir``. Returns their paths."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = [
        (
            "training_rewards",
            "Training reward per step (window mean)",
            [
                ("train/total_reward", "total"),
                ("train/music_theory_reward", "music theory (×c)"),
                ("train/note_rnn_log_p", "Note RNN log p(a|s)"),
            ],
        ),
        (
            "evaluation_rewards",
            "Evaluation reward per step (sampled, no exploration)",
            [
                ("eval/total_reward", "total"),
                ("eval/music_theory_reward", "music theory (×c)"),
                ("eval/note_rnn_log_p", "Note RNN log p(a|s)"),
            ],
        ),
        ("target_values", "Mean target value y = r + γ V(s')", [("losses/mean_target", "mean y")]),
    ]
    paths = []
    for name, title, keys in specs:
        fig, ax = plt.subplots(figsize=(7, 4))
        for key, label in keys:
            x, y = _series(history, key)
            if x.size:
                ax.plot(x, y, marker="o", ms=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("environment steps")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend()
        path = out / f"{name}.{fmt}"
        _save(fig, path, fmt)
        plt.close(fig)
        paths.append(path)
    return paths

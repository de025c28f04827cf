"""One trial of a sweep, as Ray Tune runs it in a worker process.

Kept apart from :mod:`rltuner.sweep` (the driver's side) so that a worker imports nothing of
rltuner before the trial starts: a trial's own wall time (``sweep_trial.json``) then counts
rltuner's imports and kernel loading, as the time of a ``rltuner tune`` process does, and only
Ray's own costs (worker start, scheduling) fall outside it.
"""

from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path
from typing import Any


def run_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable: train the trial's run directory to the end (from its last
    checkpoint when it has one), report every evaluation window, then evaluate it."""
    t0 = time.perf_counter()
    trial = config["trial"]  # rltuner.sweep.Trial as a dict: name, settings, config
    run = Path(config["sweep_dir"]) / "trials" / trial["name"]
    run.mkdir(parents=True, exist_ok=True)
    # a worker of a killed driver can outlive it for a moment: never train one run twice at once
    with open(run / ".sweep.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _train_and_evaluate(trial, config["evaluation"], run, t0)


def _train_and_evaluate(trial: dict[str, Any], ev: dict[str, Any], run: Path, t0: float) -> None:
    import ray
    from ray import tune

    from rltuner.checkpoint import atomic_write_text
    from rltuner.evaluate import evaluate_models, load_model, rows_matching_paper
    from rltuner.tuner import RLTuner, TunerConfig, has_checkpoint

    info_path = run / "sweep_trial.json"
    cfg = TunerConfig.from_dict(trial["config"])
    if has_checkpoint(run):
        tuner = RLTuner.load(run, {"rules": cfg.rules} if cfg.rules else None)
    else:  # never started, or stopped before its first checkpoint was whole: from the start
        tuner = RLTuner(cfg)
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError):
        info = {"name": trial["name"], "settings": trial["settings"], "attempts": [],
                "wall_seconds": 0.0}  # fmt: skip
    node = ray.get_runtime_context().get_node_id()  # which Ray node ran this attempt
    info["attempts"].append({"start_step": tuner.step, "wall_seconds": 0.0, "node": node})
    last: dict[str, float] = {}

    def save_info() -> None:
        info["attempts"][-1]["wall_seconds"] = time.perf_counter() - t0
        info["wall_seconds"] = sum(a["wall_seconds"] for a in info["attempts"])
        atomic_write_text(info_path, json.dumps(info, indent=2) + "\n")

    def on_window(row: dict[str, float]) -> None:
        last.update(row)
        save_info()
        if row["step"] < tuner.config.steps:  # the last window is reported with the evaluation:
            tune.report(dict(row))  # a scheduler's stop there must not cut the evaluation off

    save_info()
    tuner.train(run, progress=False, on_window=on_window)
    if not last and tuner.history:
        last.update(tuner.history[-1])
    comp = evaluate_models(
        [load_model(run, name=trial["name"])], compositions=ev["compositions"], seed=ev["seed"],
        key=cfg.key, num_notes=cfg.num_notes, workers=1,
    )  # fmt: skip
    m = comp.models[0]
    rows = sum(rows_matching_paper(m.table1()).values())
    save_info()
    comp.write(run, stem="evaluation")  # last: its presence marks the trial finished
    tune.report({**last, "step": tuner.step, "rows_met": rows,
                 **{f"extra/{k}": v for k, v in m.extra.items()}})  # fmt: skip

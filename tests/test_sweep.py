"""rltuner sweep: SPEC checking, trial expansion, and sweeps on a local Ray (one Ray start in
this process for the module; the kill-and-resume test runs its drivers as subprocesses)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rltuner import cli
from rltuner.checkpoint import load_arrays
from rltuner.errors import RltunerError
from rltuner.metrics import TABLE1_ROWS
from rltuner.sweep import (
    INSTALL_HINT,
    WINDOW_METRICS,
    expand_trials,
    load_spec,
    parse_spec,
)

BASE = """\
[base]
note_rnn = "{note_rnn}"
steps = 9600
eval_every = 1600
exploration_period = 1600
memory_size = 4000
num_envs = 16
eval_compositions = 16
final_compositions = 64
num_samples = 2
"""
SPEC = (
    BASE
    + """
[space]
seed = [0, 1]
algorithm = ["q", "psi"]

[evaluation]
compositions = 300
seed = 0
"""
)


def _spec(tmp_path: Path, text: str, note_rnn: Path | str = "") -> Path:
    p = tmp_path / "spec.toml"
    p.write_text(text.replace("{note_rnn}", str(note_rnn)))
    return p


# ---------------------------------------------------------------------- SPEC checks (no Ray)
BAD_SPECS = {
    "unknown field": ("[space]\nsed = [0, 1]\n", r"unknown field 'sed' in \[space\].*'seed'"),
    "unknown base field": ("[base]\nstep = 5\n[space]\nseed = [0]\n", r"unknown field 'step'"),
    "wrong type": ('[space]\nseed = ["a", "b"]\n', r"space.seed value must be an integer"),
    "wrong base type": (
        '[base]\nsteps = "many"\n[space]\nseed = [0]\n',
        r"base.steps must be an integer",
    ),
    "empty space": ("[base]\nsteps = 100\n", r"\[space\] is missing or empty"),
    "empty grid": ("[space]\nseed = []\n", r"space.seed is an empty list"),
    "invalid value": (
        '[space]\nalgorithm = ["q", "ppo"]\n',
        r"trial 001_algorithm=ppo: unknown algorithm 'ppo'",
    ),
    "invalid number": ("[space]\nsteps = [100, 0]\n", r"steps must be at least 1, got 0"),
    "bad distribution": (
        "[space]\nreward_scaler = { normal = [0, 1] }\n",
        r"expected a list of values",
    ),
    "real draw of an int": ("[space]\nsteps = { uniform = [1, 9] }\n", r"use randint"),
    "loguniform at 0": ("[space]\nlearning_rate = { loguniform = [0, 1] }\n", r"low > 0"),
    "scalar": ("[space]\nseed = 3\n", r"a fixed value belongs in \[base\]"),
    "unknown rule weight": ("[space]\nweights.nonsense = [0, 1]\n", r"unknown rule"),
    "repeated samples": ("[space]\nseed = [0]\n[sweep]\nsamples = 3\n", r"identical trials"),
    "not toml": ("[space\nseed = [0]\n", r"not valid TOML"),
}


@pytest.mark.parametrize("case", BAD_SPECS)
def test_bad_spec_is_refused_with_one_line(case, tmp_path, capsys):
    text, pattern = BAD_SPECS[case]
    spec = _spec(tmp_path, text)
    out = tmp_path / "sweep"
    assert cli.main(["sweep", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rltuner: error: "), err
    assert str(spec) in err
    import re

    assert re.search(pattern, err), err
    assert not out.exists()  # refused before anything started


def test_missing_spec_and_bad_options_are_one_line(tmp_path, capsys):
    assert cli.main(["sweep", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "s")]) == 2
    assert "no such SPEC file" in capsys.readouterr().err
    spec = _spec(tmp_path, "[space]\nseed = [0]\n")
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "s"), "--metric", "x"]) == 2
    assert "--metric must be one of" in capsys.readouterr().err
    assert cli.main(["sweep", "--resume", str(tmp_path)]) == 2
    assert "no sweep to resume" in capsys.readouterr().err


def test_without_ray_sweep_says_how_to_install(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n.startswith("ray") else real(n, *a)
    )
    spec = _spec(tmp_path, "[space]\nseed = [0]\n")
    assert cli.main(["sweep", str(spec), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err == f"rltuner: error: {INSTALL_HINT}\n"
    assert 'pip install "rltuner[sweep]"' in err


def test_grid_and_random_expansion_is_seeded_and_validated(tmp_path):
    text = """
[base]
steps = 1000
weights = { autocorrelation = 0.5 }
[space]
algorithm = ["q", "g"]
reward_scaler = { uniform = [0.5, 4.0] }
learning_rate = { loguniform = [1e-4, 1e-2] }
train_every = { randint = [3, 6] }
weights.motif = [0, 2]
exploration = { choice = ["egreedy", "boltzmann"] }
[sweep]
samples = 3
seed = 7
"""
    spec = load_spec(_spec(tmp_path, text))
    a, b = expand_trials(spec), expand_trials(spec)
    assert len(a) == 2 * 2 * 3
    assert [t.config for t in a] == [t.config for t in b]  # same SPEC, same trials
    for t in a:
        c = t.config
        assert 0.5 <= c["reward_scaler"] < 4.0 and 1e-4 <= c["learning_rate"] < 1e-2
        assert c["train_every"] in (3, 4, 5) and c["exploration"] in ("egreedy", "boltzmann")
        assert c["weights"] == {"autocorrelation": 0.5, "motif": t.settings["weights.motif"]}
        assert c["steps"] == 1000
    assert len({t.name for t in a}) == len(a)
    assert [t.settings["algorithm"] for t in a[:6]] == ["q"] * 6
    assert len({t.config["reward_scaler"] for t in a}) == len(a)  # fresh draws per trial
    other = load_spec(_spec(tmp_path, text.replace("seed = 7", "seed = 8")))
    assert [t.config for t in expand_trials(other)] != [t.config for t in a]


def test_relative_paths_are_resolved_where_the_sweep_starts(tmp_path, monkeypatch, tiny_note_rnn):
    monkeypatch.chdir(tiny_note_rnn.parent)
    spec = parse_spec({"base": {"note_rnn": tiny_note_rnn.name}, "space": {"seed": [0]}})
    (t,) = expand_trials(spec)
    assert t.config["note_rnn"] == str(tiny_note_rnn)
    missing = parse_spec({"base": {"note_rnn": "gone.safetensors"}, "space": {"seed": [0]}})
    with pytest.raises(RltunerError, match="no such file"):
        expand_trials(missing)


@pytest.mark.parametrize("algorithm", ["q", "kl_pg"])
def test_window_rows_carry_every_sweep_metric(algorithm, tiny_note_rnn):
    """Every algorithm's loop hands each window's row to train(on_window=...)."""
    from rltuner.tuner import RLTuner, TunerConfig

    if algorithm == "kl_pg":
        pytest.importorskip("torch")
    rows = []
    cfg = TunerConfig(note_rnn=str(tiny_note_rnn), algorithm=algorithm, steps=3200,
                      eval_every=1600, num_envs=16, memory_size=2000, eval_compositions=8,
                      pg_batch=16, report=False, threads=1)  # fmt: skip
    RLTuner(cfg).train(None, progress=False, on_window=rows.append)
    assert len(rows) == 2 and rows[-1]["step"] >= 3200
    assert all(set(WINDOW_METRICS) <= set(r) for r in rows)


# ---------------------------------------------------------------------- sweeps on Ray
@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=80 * 2**20, logging_level="WARNING")  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def clean_sweep(ray_session, tiny_note_rnn, tmp_path_factory):
    """The 4-trial sweep, uninterrupted."""
    from rltuner.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("clean")
    spec = _spec(tmp, SPEC, tiny_note_rnn)
    results = run_sweep(tmp / "sweep", spec, quiet=True)
    return tmp / "sweep", spec, results


_TUNE_VARIABLES = ("RAY_AIR_NEW_OUTPUT", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS")
_ENVIRONMENT_BEFORE = {k: os.environ.get(k) for k in _TUNE_VARIABLES}  # before any sweep here


def test_sweep_rows_equal_tune_plus_evaluate(clean_sweep, tmp_path):
    out, spec, results = clean_sweep
    # the Tune settings of the sweep were for the sweep only: the caller's environment is as it was
    assert {k: os.environ.get(k) for k in _TUNE_VARIABLES} == _ENVIRONMENT_BEFORE
    rows = results["trials"]
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    assert [r["settings"] for r in rows] == [{"seed": s, "algorithm": a}
                                             for s in (0, 1) for a in ("q", "psi")]  # fmt: skip
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 5
    assert json.loads((out / "results.json").read_text())["trials"] == rows
    assert (out / "results.md").read_text().count("| finished |") == 4
    assert (out / "plots" / "tradeoff.png").stat().st_size > 0
    assert (out / "plots" / "by_algorithm.png").stat().st_size > 0

    base = tmp_path / "base.toml"
    base.write_text(spec.read_text().split("[space]")[0].replace("[base]", ""))
    for r in rows:
        s, a = r["settings"]["seed"], r["settings"]["algorithm"]
        run, ev = tmp_path / f"run_{s}_{a}", tmp_path / f"eval_{s}_{a}"
        assert cli.main(["tune", "--config", str(base), "--seed", str(s), "--algorithm", a,
                         "--out", str(run), "--no-report", "--quiet"]) == 0  # fmt: skip
        assert cli.main(["evaluate", str(run), "--compositions", "300", "--seed", "0",
                         "--out", str(ev), "--no-plot", "--quiet"]) == 0  # fmt: skip
        m = json.loads((ev / "evaluation.json").read_text())["models"][0]
        assert r["table1"] == m["table1"]
        assert r["extra"] == m["extra"]
        assert r["rows_met"] == sum(m["matches_paper_q"].values())
        assert r["steps"] == 9600
        assert r["r_mt"] == json.loads((run / "stats.json").read_text())["mean_music_theory"]
        assert set(r["table1"]) == set(TABLE1_ROWS) and r["wall_seconds"] > 0


def test_report_of_a_sweep_is_one_offline_page(clean_sweep, capsys):
    out, _, _ = clean_sweep
    assert cli.main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert page.count("<img") >= 2 and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page
    assert page.count("<td>finished</td>") == 4


def _progress(trials: Path) -> tuple[set[str], dict[str, int]]:
    finished = {p.parent.name for p in trials.glob("*/evaluation.json")}
    steps = {s.parent.parent.name: load_arrays(s)[1]["step"]
             for s in trials.glob("*/checkpoint/state.safetensors")
             if s.parent.parent.name not in finished}  # fmt: skip
    return finished, steps


def _kill_session(sid: int) -> None:
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if entry.name.isdigit() and int(fields[3]) == sid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue


def _wait_for_trial_locks(trials: Path, timeout: float = 60.0) -> None:
    """Until no process trains a trial (each holds its run's lock while it does)."""
    import fcntl

    deadline = time.monotonic() + timeout
    for lock in trials.glob("*/.sweep.lock"):
        with open(lock) as f:
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(f, fcntl.LOCK_UN)
                    break
                except BlockingIOError:
                    assert time.monotonic() < deadline, f"{lock.parent.name} still trains"
                    time.sleep(0.1)


def _driver(*args: str) -> list[str]:
    return [sys.executable, "-m", "rltuner.cli", "sweep", *args, "--quiet"]


def test_killed_sweep_resumes_every_trial_once(clean_sweep, tiny_note_rnn, tmp_path):
    clean, _, clean_results = clean_sweep
    spec = _spec(tmp_path, SPEC, tiny_note_rnn)
    out = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_driver(str(spec), "--out", str(out), "--num-cpus", "2"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    trials = out / "trials"
    deadline = time.monotonic() + 240
    mid = None
    while proc.poll() is None and time.monotonic() < deadline and mid is None:
        finished = {p.parent.name for p in trials.glob("*/evaluation.json")}
        for state in trials.glob("*/checkpoint/state.safetensors"):
            run = state.parent.parent
            if finished and run.name not in finished:
                try:
                    step = load_arrays(state)[1]["step"]
                except Exception:  # noqa: BLE001 -- being replaced right now: look again
                    continue
                if 0 < step < 9600:
                    mid = run.name
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    assert mid is not None, "no trial was caught mid-way"
    # the driver dies, then (as when its job is killed) everything it started: its Ray and
    # the trials' workers, all in its session
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    _kill_session(proc.pid)
    _wait_for_trial_locks(trials)
    finished_before, steps_at_kill = _progress(trials)
    started_before = {
        p.parent.name: len(json.loads(p.read_text())["attempts"])
        for p in trials.glob("*/sweep_trial.json")
    }
    assert finished_before and steps_at_kill

    resumed = subprocess.run(_driver("--resume", str(out)), env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert [r["status"] for r in results["trials"]] == ["finished"] * 4
    for r in results["trials"]:
        info = json.loads((trials / r["trial"] / "sweep_trial.json").read_text())
        starts = [a["start_step"] for a in info["attempts"]]
        if r["trial"] in finished_before:
            assert starts == [0]  # kept, not run again
        elif r["trial"] in steps_at_kill:
            assert starts == [0, steps_at_kill[r["trial"]]]  # resumed, not restarted
        else:  # killed before its first checkpoint (if started at all): from the start
            assert starts == [0] * (started_before.get(r["trial"], 0) + 1)
        logged = [json.loads(x)["step"] for x in
                  (trials / r["trial"] / "metrics.jsonl").read_text().splitlines()]  # fmt: skip
        assert logged == list(range(1600, 9601, 1600))
        a, _ = load_arrays(trials / r["trial"] / "tuned.safetensors")
        b, _ = load_arrays(clean / "trials" / r["trial"] / "tuned.safetensors")
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{r['trial']} {k}")
    same = lambda rs: [{k: r[k] for k in ("trial", "table1", "extra", "rows_met", "r_mt")}  # noqa: E731
                       for r in rs]  # fmt: skip
    assert same(results["trials"]) == same(clean_results["trials"])


def test_crashed_trial_is_retried_from_its_checkpoint(clean_sweep, tiny_note_rnn, tmp_path):
    """A user rule that kills its worker process once, mid-way; the retried trial reaches the
    uninterrupted trial's weights (the rule adds 0 to every reward)."""
    from rltuner.sweep import SweepConfig, run_sweep

    marker = tmp_path / "crashed"
    rule = tmp_path / "crash_rule.py"
    rule.write_text(f"""
import os
import numpy as np
calls = 0
def crash_once(compositions, beat, action, key):
    global calls
    calls += 1
    if calls == 250 and not os.path.exists({str(marker)!r}):
        open({str(marker)!r}, "w").close()
        os._exit(3)
    return np.zeros(len(action))
""")
    text = SPEC.replace('seed = [0, 1]\nalgorithm = ["q", "psi"]', "seed = [0]")
    text = text.replace("[space]", f'rules = ["{rule}:crash_once"]\n\n[space]')
    spec = _spec(tmp_path, text, tiny_note_rnn)
    results = run_sweep(tmp_path / "sweep", spec, SweepConfig(max_failures=1), quiet=True)
    assert marker.exists()
    (r,) = results["trials"]
    assert r["status"] == "finished" and r["steps"] == 9600
    info = json.loads((tmp_path / "sweep" / "trials" / r["trial"] / "sweep_trial.json").read_text())
    starts = [a["start_step"] for a in info["attempts"]]
    assert len(starts) == 2 and starts[0] == 0 and 0 < starts[1] < 9600, starts
    clean, _, _ = clean_sweep
    a, _ = load_arrays(tmp_path / "sweep" / "trials" / r["trial"] / "tuned.safetensors")
    b, _ = load_arrays(clean / "trials" / "000_seed=0_algorithm=q" / "tuned.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_asha_stops_trials_early_and_resume_keeps_them_stopped(ray_session, tiny_note_rnn,
                                                                tmp_path):  # fmt: skip
    from rltuner.sweep import SweepConfig, run_sweep

    text = SPEC.replace('seed = [0, 1]\nalgorithm = ["q", "psi"]', "seed = [0, 1, 2, 3, 4, 5]")
    spec = _spec(tmp_path, text, tiny_note_rnn)
    options = SweepConfig(scheduler="asha", grace_windows=1)
    results = run_sweep(tmp_path / "sweep", spec, options, quiet=True)
    states = {r["trial"]: r["status"] for r in results["trials"]}
    assert set(states.values()) <= {"finished", "stopped"} and "finished" in states.values()
    for r in results["trials"]:
        if r["status"] == "finished":  # ran to the end and was evaluated, never cut off
            assert r["steps"] == 9600 and r["rows_met"] is not None
        else:
            assert r["steps"] < 9600 and r["rows_met"] is None
    again = run_sweep(tmp_path / "sweep", None, options, resume=True, quiet=True)
    assert {r["trial"]: r["status"] for r in again["trials"]} == states

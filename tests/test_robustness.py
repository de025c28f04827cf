"""Fault tolerance and safe loading: SIGKILL + --resume, NaN stops, failed writes, pickles."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rltuner.checkpoint import load_arrays
from rltuner.errors import RltunerError
from rltuner.tuner import RLTuner, has_checkpoint

_TUNE_FLAGS = [
    "--steps",
    "32000",
    "--eval-every",
    "1600",
    "--exploration-period",
    "8000",
    "--memory-size",
    "4000",
    "--num-envs",
    "16",
    "--eval-compositions",
    "8",
    "--final-compositions",
    "32",
    "--num-samples",
    "1",
    "--seed",
    "5",
    "--quiet",
]


def _rltuner(*args: str) -> list[str]:
    no_report = [] if "--resume" in args else ["--no-report"]  # a resume keeps the run's config
    return [sys.executable, "-m", "rltuner.cli", *args, *no_report]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def test_sigkill_then_resume_reaches_the_uninterrupted_weights(tiny_note_rnn, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    base = ["tune", "--note-rnn", str(tiny_note_rnn), *_TUNE_FLAGS]
    proc = subprocess.Popen(
        _rltuner(*base, "--out", str(killed)),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    state = killed / "checkpoint" / "state.safetensors"
    deadline = time.monotonic() + 60
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    step_at_kill = load_arrays(state)[1]["step"]
    assert 0 < step_at_kill < 32000
    assert not (killed / "tuned.safetensors").exists()

    resumed = subprocess.run(
        _rltuner("tune", "--resume", str(killed), "--quiet"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed} at step {step_at_kill:,}" in resumed.stdout
    done = subprocess.run(
        _rltuner(*base, "--out", str(full)), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr

    a, _ = load_arrays(full / "tuned.safetensors")
    b, _ = load_arrays(killed / "tuned.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1600, 32001, 1600))  # no duplicated or lost log rows


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(
    small_config, tiny_note_rnn, tmp_path
):
    t = RLTuner(small_config())
    t.train(tmp_path, progress=False, stop_after=1600)
    state = tmp_path / "checkpoint" / "state.safetensors"
    good = state.read_bytes()
    t.learner.q.theta[:5] = np.nan  # e.g. an exploding learning rate
    with pytest.raises(RltunerError, match=r"diverged.*NaN or infinite.*last good checkpoint"):
        t.train(tmp_path, progress=False)
    assert state.read_bytes() == good
    assert RLTuner.load(tmp_path).step == 1600


def test_nan_loss_is_caught_at_the_update(small_config, tiny_note_rnn, monkeypatch):
    from rltuner.learner import Learner, UpdateStats

    def bad_update(self, memory, idx):
        return UpdateStats(np.full(len(idx), np.inf), np.zeros(len(idx)))

    monkeypatch.setattr(Learner, "update", bad_update)
    with pytest.raises(RltunerError, match="TD loss became NaN or infinite.*no checkpoint"):
        RLTuner(small_config()).train(None, progress=False)


def test_unwritable_run_dir_fails_before_training(small_config, tiny_note_rnn, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    t = RLTuner(small_config())
    with pytest.raises(RltunerError, match="cannot write the run directory"):
        t.train(blocker / "run", progress=False)
    assert t.step == 0
    r = subprocess.run(
        _rltuner(
            "tune",
            "--note-rnn",
            str(tiny_note_rnn),
            "--steps",
            "320",
            "--out",
            str(blocker / "run"),
        ),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "cannot write the run directory" in r.stderr and "Traceback" not in r.stderr


def test_failed_checkpoint_write_leaves_the_previous_one_intact(
    small_config, tiny_note_rnn, tmp_path, monkeypatch
):
    t = RLTuner(small_config())
    t.train(tmp_path, progress=False, stop_after=1600)
    ckpt = tmp_path / "checkpoint"
    good = (ckpt / "state.safetensors").read_bytes()

    real_write = Path.write_bytes

    def disk_full(self, data):  # checkpoint: half the bytes land, then the disk is full
        if self.parent.name != "checkpoint":
            return real_write(self, data)
        real_write(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    import safetensors.numpy

    real_save_file = safetensors.numpy.save_file

    def save_file_disk_full(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        disk_full(Path(filename), Path(filename).read_bytes())

    monkeypatch.setattr(Path, "write_bytes", disk_full)  # however the checkpoint is written
    monkeypatch.setattr(safetensors.numpy, "save_file", save_file_disk_full)
    with pytest.raises(RltunerError, match="cannot write the checkpoint.*No space left.*intact"):
        t.train(tmp_path, progress=False)
    monkeypatch.undo()
    assert (ckpt / "state.safetensors").read_bytes() == good
    assert sorted(p.name for p in ckpt.iterdir()) == ["state.safetensors"]  # no temp file left
    assert RLTuner.load(tmp_path).step == 1600


def test_full_disk_while_logging_is_a_clear_error(
    small_config, tiny_note_rnn, tmp_path, monkeypatch
):
    import rltuner.tuner as tuner_mod

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    t = RLTuner(small_config())
    monkeypatch.setattr(tuner_mod, "_write_csv", lambda path, rows: disk_full(path, ""))
    with pytest.raises(RltunerError, match="cannot write the training log.*No space left"):
        t.train(tmp_path, progress=False)


def test_resume_tolerates_a_log_line_torn_by_a_kill(small_config, tiny_note_rnn, tmp_path):
    RLTuner(small_config()).train(tmp_path, progress=False, stop_after=1600)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 3200, "train/tot')
    t = RLTuner.load(tmp_path)
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1600] and t.step == 1600


# ---------------------------------------------------------------------- safe loading
class _CreatesMarker:
    """Unpickling this calls open(marker, "w"): proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_object_array_in_a_dataset_is_refused(tmp_path):
    from rltuner.corpus import Dataset

    marker = tmp_path / "pwned"
    evil = tmp_path / "dataset.npz"
    arr = np.empty(1, dtype=object)
    arr[0] = _CreatesMarker(marker)
    np.savez(evil, format=np.array("rltuner-melody-dataset"), steps=arr)
    with pytest.raises(RltunerError, match="dataset.npz"):
        Dataset.load(evil)
    assert not marker.exists()
    # a bare pickle named .npz is refused too
    (tmp_path / "bare.npz").write_bytes(pickle.dumps(_CreatesMarker(marker)))
    with pytest.raises(RltunerError, match="bare.npz"):
        Dataset.load(tmp_path / "bare.npz")
    assert not marker.exists()


def test_pickle_named_safetensors_is_refused(tmp_path, tiny_note_rnn):
    from rltuner.env import load_network

    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": _CreatesMarker(marker)})
    model = tmp_path / "model.safetensors"
    model.write_bytes(payload)
    with pytest.raises(RltunerError, match="model.safetensors: not a valid"):
        load_network(model)
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "state.safetensors").write_bytes(payload)
    with pytest.raises(RltunerError, match="not a valid run checkpoint"):
        RLTuner.load(run)
    try:  # the torch loader (generate, note-rnn) goes through the same safetensors reader
        from rltuner.note_rnn import load_note_rnn
    except ImportError:
        load_note_rnn = None
    if load_note_rnn is not None:
        with pytest.raises(RltunerError):
            load_note_rnn(model)
    assert not marker.exists()


# ---------------------------------------------------------------------- damaged checkpoints
def _damage(path: Path) -> None:
    """Flip bytes inside the tensor data (past the header), as a bad disk or copy would."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 600, len(data) - 500):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_checkpoint_is_refused_and_the_previous_one_resumes(small_config, tmp_path, capsys):
    RLTuner(small_config(steps=4800)).train(tmp_path, progress=False, stop_after=3200)
    ckpt = tmp_path / "checkpoint"
    assert sorted(p.name for p in ckpt.iterdir()) == ["previous.safetensors", "state.safetensors"]
    assert load_arrays(ckpt / "previous.safetensors")[1]["step"] == 1600
    _damage(ckpt / "state.safetensors")
    with pytest.raises(RltunerError, match=r"state.safetensors: the run checkpoint is damaged"):
        load_arrays(ckpt / "state.safetensors", what="run checkpoint")
    capsys.readouterr()
    t = RLTuner.load(tmp_path)  # falls back to the checkpoint before, and says so
    err = capsys.readouterr().err
    assert t.step == 1600
    assert "damaged" in err and "previous checkpoint previous.safetensors (step 1,600)" in err
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1600]  # the log follows the checkpoint
    # the run finishes from there as an uninterrupted one does
    t.train(tmp_path, progress=False)
    full = RLTuner(small_config(steps=4800))
    full.train(tmp_path / "full", progress=False)
    np.testing.assert_array_equal(t.learner.q.theta, full.learner.q.theta)
    # both damaged: one line naming both files
    _damage(ckpt / "state.safetensors")
    _damage(ckpt / "previous.safetensors")
    with pytest.raises(RltunerError, match=r"state.safetensors.*damaged.*previous.safetensors"):
        RLTuner.load(tmp_path)


def test_damaged_model_file_is_refused(tiny_note_rnn, tmp_path):
    from rltuner.env import load_network

    bad = tmp_path / "model.safetensors"
    bad.write_bytes(tiny_note_rnn.read_bytes())
    load_network(bad)
    _damage(bad)
    with pytest.raises(RltunerError, match="model.safetensors: .*damaged.*SHA-256"):
        load_network(bad)


# ---------------------------------------------------------------------- Ctrl-C mid-window
# The only column that depends on the wall clock (and so differs between any two runs).
TIMING_COLUMNS = {"charts/steps_per_second"}


def _rows(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


def _csv(run: Path) -> list[dict]:
    import csv

    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in csv.DictReader(f)]


def test_ctrl_c_mid_window_then_resume_logs_what_an_uninterrupted_run_logs(
    small_config, tmp_path, monkeypatch
):
    from rltuner.learner import Learner

    full, cut = tmp_path / "full", tmp_path / "cut"
    RLTuner(small_config(steps=4800)).train(full, progress=False)

    real_update, calls = Learner.update, {"n": 0}

    def update_then_ctrl_c(self, memory, idx):
        calls["n"] += 1
        if calls["n"] == 140:  # one update per environment step: step 16 * (140 + 4) = 2,304
            os.kill(os.getpid(), signal.SIGINT)
        return real_update(self, memory, idx)

    monkeypatch.setattr(Learner, "update", update_then_ctrl_c)
    t = RLTuner(small_config(steps=4800))
    assert t.train(cut, progress=False)["interrupted"]
    monkeypatch.undo()
    assert 1600 < t.step < 3200  # in the middle of the second window
    assert [r["step"] for r in _rows(cut)] == [1600]  # no partial row
    RLTuner.load(cut).train(cut, progress=False)
    assert _rows(cut) == _rows(full)  # charts/updates, train/*, losses/*, eval/* ... exactly
    assert _csv(cut) == _csv(full)
    a, _ = load_arrays(full / "tuned.safetensors")
    b, _ = load_arrays(cut / "tuned.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_run_stopped_before_its_first_checkpoint_starts_over(small_config, tmp_path):
    """A kill during the first checkpoint write can leave ``checkpoint/`` without a state file:
    nothing to resume, so a new run there starts over instead of refusing the folder (a
    sweep's trial killed at that moment is then simply run from the start)."""
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "state.safetensors.tmp123").write_bytes(b"torn")
    (run / "metrics.jsonl").write_text('{"step": 16')
    assert not has_checkpoint(run)
    cfg = small_config(steps=1600)
    RLTuner(cfg).train(run, progress=False)
    assert has_checkpoint(run)
    assert not (run / "checkpoint" / "state.safetensors.tmp123").exists()
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [
        1600
    ]
    # a real checkpoint, even only the previous one (a crash between the two renames), is a
    # run that can be continued: a new run there is refused unless forced
    os.replace(
        run / "checkpoint" / "state.safetensors", run / "checkpoint" / "previous.safetensors"
    )
    assert has_checkpoint(run)
    with pytest.raises(RltunerError, match="already holds a run"):
        RLTuner(cfg).train(run, progress=False)

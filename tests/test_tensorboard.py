"""TensorBoard logs through tensorboardX, read back with TensorBoard's own reader: round trip,
resume purge, tuner logging."""

import json
import struct

import pytest

pytest.importorskip("tensorboard", reason="reading the logs back needs the tensorboard package")

from rltuner.errors import RltunerError
from rltuner.tensorboard import ScalarWriter, read_scalars
from rltuner.tuner import RLTuner


def _tb(small_config, **fields):
    """The shared small run (conftest.SMALL_RUN), three windows, with TensorBoard logging."""
    return small_config(**{"steps": 4800, "tensorboard": True, **fields})


def test_round_trip_and_skipped_values(tmp_path):
    w = ScalarWriter(tmp_path)
    w.add_scalars(10, {"train/reward": 1.5, "eval/n": 3, "flag": True, "name": "x"})
    w.add_scalars(20, {"train/reward": -2.25})
    got = read_scalars(tmp_path)
    assert got == {"train/reward": [(10, 1.5), (20, -2.25)], "eval/n": [(10, 3.0)]}


def test_each_row_is_on_disk_when_add_scalars_returns(tmp_path):
    """No writer thread holds points back: a run killed right after a checkpoint keeps them."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    w = ScalarWriter(tmp_path)
    w.add_scalars(7, {"a": 1.0})
    steps = [e.step for e in EventFileLoader(str(w.path)).Load() if e.HasField("summary")]
    assert steps == [7]


def test_resume_purges_points_after_the_checkpoint(tmp_path):
    """TensorBoard's own reader (EventAccumulator) applies the purge of a resumed writer."""
    first = ScalarWriter(tmp_path)
    for step in (100, 200, 300):  # the run logged 300, but its last checkpoint was at 200
        first.add_scalars(step, {"train/r": step / 100, "eval/x": -step})
    ScalarWriter(tmp_path, resume_step=200).add_scalars(300, {"train/r": 9.0})
    assert read_scalars(tmp_path) == {
        "train/r": [(100, 1.0), (200, 2.0), (300, 9.0)],
        "eval/x": [(100, -100.0), (200, -200.0)],
    }


def test_two_writers_in_one_second_keep_their_order(tmp_path):
    for value in (1.0, 2.0, 3.0):  # each a "resumed run" overwriting step 5
        ScalarWriter(tmp_path, resume_step=4).add_scalars(5, {"r": value})
    assert read_scalars(tmp_path) == {"r": [(5, 3.0)]}
    assert len(list(tmp_path.iterdir())) == 3


def test_tuner_logs_every_window_once_across_a_resume(small_config, tmp_path):
    RLTuner(_tb(small_config)).train(tmp_path, progress=False, stop_after=3200)
    # as if the killed process had logged a window after its last checkpoint
    ScalarWriter(tmp_path / "tensorboard").add_scalars(4800, {"train/reward": 1e6})
    t = RLTuner.load(tmp_path)
    t.train(tmp_path, progress=False)
    tb = read_scalars(tmp_path / "tensorboard")
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [s for s, _ in tb["train/reward"]] == [r["step"] for r in rows] == [1600, 3200, 4800]
    for (step, v), row in zip(tb["eval/note_rnn_log_p"], rows, strict=True):
        assert step == row["step"]
        assert v == struct.unpack("<f", struct.pack("<f", row["eval/note_rnn_log_p"]))[0]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert tb["table1/Notes in motif"] == [(4800, pytest.approx(stats["table1"]["Notes in motif"]))]


def test_resuming_a_finished_run_logs_nothing_twice(small_config, tmp_path):
    RLTuner(_tb(small_config, steps=3200)).train(tmp_path, progress=False)
    RLTuner.load(tmp_path).train(tmp_path, progress=False)  # rewrites the end-of-run outputs
    tb = read_scalars(tmp_path / "tensorboard")
    assert len(list((tmp_path / "tensorboard").iterdir())) == 2
    assert [s for s, _ in tb["eval/log_p_plus_music_theory"]] == [1600, 3200]
    assert [s for s, _ in tb["table1/Leaps resolved"]] == [3200]


def test_off_by_default(small_config, tmp_path):
    RLTuner(_tb(small_config, tensorboard=False, steps=1600)).train(tmp_path, progress=False)
    assert not (tmp_path / "tensorboard").exists()


def test_new_run_refuses_an_old_run_dir_unless_forced(small_config, tmp_path):
    RLTuner(_tb(small_config, steps=1600, seed=1)).train(tmp_path, progress=False)
    with pytest.raises(RltunerError, match="already holds a run"):
        RLTuner(_tb(small_config, steps=1600, seed=2)).train(tmp_path, progress=False)
    RLTuner(_tb(small_config, steps=1600, seed=2)).train(tmp_path, progress=False, force=True)
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 2  # not the old one
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1600]  # the old run's log is gone
    assert [s for s, _ in read_scalars(tmp_path / "tensorboard")["train/reward"]] == [1600]

"""The `rltuner` command end to end, and every bad-input case: one sentence naming the file,
exit code 2, no traceback, nothing already written damaged."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rltuner.cli import main

FIX = Path(__file__).parent / "fixtures"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rltuner.cli", *args], capture_output=True, text=True, timeout=600
    )


def _assert_clear_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_tune_generate_end_to_end(tmp_path, tiny_note_rnn):
    run_dir = tmp_path / "run"
    p = run(
        "tune",
        "--note-rnn",
        str(tiny_note_rnn),
        "--steps",
        "2048",
        "--eval-every",
        "1024",
        "--exploration-period",
        "1024",
        "--memory-size",
        "2000",
        "--final-compositions",
        "64",
        "--num-samples",
        "2",
        "--no-report",
        "--out",
        str(run_dir),
        "--quiet",
    )
    assert p.returncode == 0, p.stderr
    assert "Table-1 statistics" in p.stdout
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["compositions"] == 64 and "Notes in motif" in stats["table1"]
    nat = stats["naturalness"]
    assert 0 < nat["distinct_openings_8"] <= 1 and 0 < nat["top_opening_share_16"] <= 1
    assert len(stats["naturalness_details"]["top_openings"]["16"]) == 16
    if stats["naturalness_corpus"] is not None:  # the bundled corpus is installed
        assert nat["ngram_log_likelihood"] < stats["naturalness_corpus"]["ngram_log_likelihood"]
    assert len(list((run_dir / "samples").glob("*.mid"))) == 2
    # a second start in the same folder refuses instead of overwriting the run
    p = run("tune", "--note-rnn", str(tiny_note_rnn), "--out", str(run_dir), "--quiet")
    _assert_clear_error(p, str(run_dir), "--resume")
    # --force starts over there: the new config and logs replace the old run's
    p = run(
        "tune",
        "--note-rnn",
        str(tiny_note_rnn),
        "--steps",
        "1024",
        "--eval-every",
        "1024",
        "--memory-size",
        "2000",
        "--final-compositions",
        "16",
        "--num-samples",
        "1",
        "--no-report",
        "--seed",
        "9",
        "--tensorboard",
        "--force",
        "--out",
        str(run_dir),
        "--quiet",
    )
    assert p.returncode == 0, p.stderr
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 9
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1
    from rltuner.tensorboard import read_scalars

    assert read_scalars(run_dir / "tensorboard")["eval/note_rnn_log_p"][0][0] == 1024
    # generate from the tuned run directory
    g = run(
        "generate",
        "--model",
        str(run_dir),
        "-n",
        "3",
        "--length",
        "16",
        "--out",
        str(tmp_path / "gen"),
    )
    assert g.returncode == 0, g.stderr
    assert len(list((tmp_path / "gen").glob("*.mid"))) == 3
    assert (tmp_path / "gen" / "piano_roll.png").exists()


def test_print_config_is_toml(tiny_note_rnn, capsys):
    assert (
        main(["tune", "--note-rnn", str(tiny_note_rnn), "--algorithm", "psi", "--print-config"])
        == 0
    )
    out = capsys.readouterr().out
    assert 'algorithm = "psi"' in out and "reward_scaler = 2.0" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["generate", "--primer", "FIX/missing.mid"], ["missing.mid"]),
        (["generate", "--primer", "FIX/corrupt.mid"], ["corrupt.mid", "not a valid MIDI"]),
        (["generate", "--primer", "FIX/empty.mid"], ["empty.mid", "empty"]),
        (["generate", "--primer", "FIX/drums_only.mid"], ["drums_only.mid", "no melody"]),
        (["generate", "--model", "FIX/corrupt.mid"], ["corrupt.mid"]),
        (["tune", "--note-rnn", "FIX/two_tunes.abc", "--out", "OUT"], ["two_tunes.abc"]),
        (["data", "build", "FIX/nowhere", "--out", "OUT/x.npz"], ["nowhere", "no such folder"]),
    ],
)
def test_bad_input_is_one_clear_sentence(tmp_path, tiny_note_rnn, args, needles):
    args = [a.replace("FIX", str(FIX)).replace("OUT", str(tmp_path / "o")) for a in args]
    if args[0] == "generate":
        args += ["--out", str(tmp_path / "g")]
        if "--model" not in args:
            args += ["--model", str(tiny_note_rnn)]
    _assert_clear_error(run(*args), *needles)


def test_wrong_checkpoint_kind_and_architecture_mismatch(tmp_path, tiny_note_rnn):
    from safetensors.numpy import load_file, save_file

    # a safetensors file that is not a Note RNN checkpoint
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": __import__("numpy").zeros(3, "float32")}, str(foreign))
    _assert_clear_error(
        run("generate", "--model", str(foreign), "--out", str(tmp_path / "g")),
        "foreign.safetensors",
    )
    # tensors that do not fit the architecture in the metadata
    import json as _json

    from safetensors import safe_open

    with safe_open(str(tiny_note_rnn), "numpy") as f:
        meta = f.metadata()
    d = _json.loads(meta["rltuner"])
    d["config"]["layer_sizes"] = [32]
    arrays = load_file(str(tiny_note_rnn))
    bad = tmp_path / "mismatch.safetensors"
    save_file(arrays, str(bad), metadata={"rltuner": _json.dumps(d)})
    for cmd in (
        ["generate", "--model", str(bad), "--out", str(tmp_path / "g")],
        ["tune", "--note-rnn", str(bad), "--out", str(tmp_path / "r")],
    ):
        _assert_clear_error(run(*cmd), "mismatch.safetensors", "architecture mismatch")


def test_failed_write_keeps_existing_file(tmp_path, monkeypatch):
    """An error while writing leaves the file that was there intact (temp file + rename)."""
    import numpy as np

    from rltuner import midi_io

    target = tmp_path / "song.mid"
    midi_io.write_midi(np.array([14, 1, 16, 1, 18, 0]), target)
    before = target.read_bytes()

    def boom(self, path):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    import pretty_midi

    monkeypatch.setattr(pretty_midi.PrettyMIDI, "write", boom)
    with pytest.raises(OSError):
        midi_io.write_midi(np.array([2, 4, 6]), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["song.mid"]


def test_debug_shows_traceback(tmp_path):
    p = run(
        "--debug",
        "generate",
        "--primer",
        str(FIX / "corrupt.mid"),
        "--out",
        str(tmp_path / "g"),
        "--model",
        str(FIX / "missing.safetensors"),
    )
    assert p.returncode != 0 and "Traceback" in p.stderr

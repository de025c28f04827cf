"""The `rltuner` command end to end, and every bad-input case: one sentence naming the file,
exit code 2, no traceback, nothing already written damaged."""

import argparse
import json
from pathlib import Path

import pytest

from rltuner.cli import build_parser, main

FIX = Path(__file__).parent / "fixtures"


def test_tune_generate_end_to_end(tmp_path, cli, small_tune_args):
    run_dir = tmp_path / "run"
    p = cli(*small_tune_args(steps=2048, eval_every=1024, exploration_period=1024,
                             memory_size=2000, final_compositions=64, num_samples=2),
            "--out", run_dir)  # fmt: skip
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
    cli(*small_tune_args(), "--out", run_dir).assert_clear_error(str(run_dir), "--resume")
    # --force starts over there: the new config and logs replace the old run's
    p = cli(*small_tune_args(steps=1024, eval_every=1024, memory_size=2000,
                             final_compositions=16, seed=9, tensorboard=True),
            "--force", "--out", run_dir)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 9
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1
    from rltuner.tensorboard import read_scalars

    assert read_scalars(run_dir / "tensorboard")["eval/note_rnn_log_p"][0][0] == 1024
    # generate from the tuned run directory
    g = cli("generate", "--model", run_dir, "-n", "3", "--length", "16", "--out", tmp_path / "gen")
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


def test_api_front_door():
    import rltuner
    from rltuner import RLTuner, TunerConfig
    from rltuner.tuner import RLTuner as R
    from rltuner.tuner import TunerConfig as C

    assert RLTuner is R and TunerConfig is C
    assert {"RLTuner", "TunerConfig"} <= set(rltuner.__all__)


_NO_PROC = not Path("/proc").is_dir()
_CUDA = False
try:
    import torch

    _CUDA = torch.cuda.is_available()
except ImportError:  # no torch: --device cuda is refused for that reason instead
    pass

# Every bad input is refused where it enters with one line naming it, before anything is
# written. FIX = tests/fixtures, OUT = a folder that must stay absent.
BAD_INPUTS = [
    (["generate", "--primer", "FIX/missing.mid"], ["missing.mid"]),
    (["generate", "--primer", "FIX/corrupt.mid"], ["corrupt.mid", "not a valid MIDI"]),
    (["generate", "--primer", "FIX/empty.mid"], ["empty.mid", "empty"]),
    (["generate", "--primer", "FIX/drums_only.mid"], ["drums_only.mid", "no melody"]),
    (["generate", "--model", "FIX/corrupt.mid"], ["corrupt.mid"]),
    (["tune", "--note-rnn", "FIX/two_tunes.abc", "--out", "OUT"], ["two_tunes.abc"]),
    (["data", "build", "FIX/nowhere", "--out", "OUT/x.npz"], ["nowhere", "no such folder"]),
    # issue 12, defect 3: tracebacks
    (["tune", "--key", "H major", "--out", "OUT"], ["--key", "H major"]),
    pytest.param(
        ["tune", "--device", "cuda", "--out", "OUT"],
        ["--device cuda"],
        marks=pytest.mark.skipif(_CUDA, reason="this machine has CUDA"),
    ),  # fmt: skip
    (["tune", "--device", "foo", "--out", "OUT"], ["--device", "foo"]),
    (["generate", "-n", "0", "--out", "OUT"], ["-n must be at least 1", "got 0"]),
    (["generate", "-n", "-3", "--out", "OUT"], ["-n must be at least 1", "got -3"]),
    (["generate", "--length", "0", "--out", "OUT"], ["--length must be at least 1"]),
    (["note-rnn", "train", "--layer-sizes", "0", "--out", "OUT"], ["--layer-sizes", "'0'"]),
    (["note-rnn", "train", "--layer-sizes", "64,x", "--out", "OUT"], ["--layer-sizes"]),
    pytest.param(
        ["generate", "--out", "/proc/x"],
        ["/proc/x", "cannot create"],
        marks=pytest.mark.skipif(_NO_PROC, reason="no /proc"),
    ),  # fmt: skip
    pytest.param(
        ["render", "FIX/gap_split.mid", "--out", "/proc/x"],
        ["/proc/x"],
        marks=pytest.mark.skipif(_NO_PROC, reason="no /proc"),
    ),  # fmt: skip
    pytest.param(
        ["note-rnn", "train", "--out", "/proc/x"],
        ["/proc/x", "cannot create"],
        marks=pytest.mark.skipif(_NO_PROC, reason="no /proc"),
    ),  # fmt: skip
    (["generate", "--out", "FIX/gap_split.mid/x"], ["gap_split.mid/x", "cannot create"]),
    # defect 4: silently ignored or invalid options
    (["tune", "--primer", "FIX/gap_split.mid", "--out", "OUT"], ["--primer", "single_midi"]),
    (["tune", "--threads", "3", "--out", "OUT"], ["--threads", "got 3"]),
    (["tune", "--discount", "1.5", "--out", "OUT"], ["--discount", "[0, 1)", "1.5"]),
    (["tune", "--learning-rate", "0", "--out", "OUT"], ["--learning-rate"]),
    (["tune", "--random-action-probability", "2", "--out", "OUT"], ["--random-action-prob"]),
    (["tune", "--weight", "motif=nan", "--out", "OUT"], ["motif", "finite"]),
    (["note-rnn", "train", "--num-epochs", "0", "--out", "OUT"], ["--num-epochs"]),
    (["note-rnn", "train", "--validation-fraction", "0", "--out", "OUT"], ["--validation"]),
    (["tune", "--resume", "OUT", "--learning-rate", "0.1"], ["--learning-rate", "--steps"]),
    (["tune", "--resume", "OUT", "--out", "OUT2"], ["--out", "would change"]),
    (["tune", "--resume", "OUT", "--weight", "motif=2"], ["--weight"]),
    (["tune", "--resume", "OUT", "--config", "FIX/x.toml"], ["--config"]),
    (["evaluate", "bundled", "--compositions", "0"], ["--compositions"]),
    (["evaluate", "bundled", "--key", "H"], ["--key", "'H'"]),
    (["render", "FIX/gap_split.mid", "--synth", "moog"], ["--synth", "moog"]),
    (["report", "OUT", "--samples", "0"], ["--samples"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD_INPUTS)
def test_bad_input_is_one_clear_sentence(tmp_path, tiny_note_rnn, cli, args, needles):
    args = [
        a.replace("FIX", str(FIX)).replace("OUT", str(tmp_path / "o")) for a in args
    ]  # fmt: skip
    if args[0] == "generate":
        if "--out" not in args:
            args += ["--out", str(tmp_path / "g")]
        if "--model" not in args:
            args += ["--model", str(tiny_note_rnn)]
    cli(*args).assert_clear_error(*needles)
    assert not (tmp_path / "o").exists()  # refused before anything was written
    assert not (tmp_path / "o2").exists()


def test_resume_accepts_steps_and_updates_the_saved_config(tmp_path, cli, small_tune_args):
    import tomllib

    run_dir = tmp_path / "run"
    p = cli(*small_tune_args(steps=1600), "--out", run_dir)
    assert p.returncode == 0, p.stderr
    # options that would change the run are refused, naming them; nothing is changed
    before = (run_dir / "config.json").read_text()
    cli("tune", "--resume", run_dir, "--learning-rate", "0.1").assert_clear_error(
        "--learning-rate", "would change"
    )
    cli("tune", "--resume", run_dir, "--out", tmp_path / "elsewhere").assert_clear_error("--out")
    assert (run_dir / "config.json").read_text() == before
    assert not (tmp_path / "elsewhere").exists()
    # a finished run cannot be shortened ...
    cli("tune", "--resume", run_dir, "--steps", "800").assert_clear_error("below", "1,600")
    # ... but can be extended: the saved configuration says how long it now is
    p = cli("tune", "--resume", run_dir, "--steps", "3200", "--threads", "1", "--quiet")
    assert p.returncode == 0, p.stderr
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 3200
    assert tomllib.loads((run_dir / "config.toml").read_text())["steps"] == 3200
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1600, 3200]


def test_api_resume_refuses_changes(tmp_path, small_config):
    from rltuner.errors import RltunerError
    from rltuner.tuner import RLTuner

    RLTuner(small_config(steps=1600)).train(tmp_path, progress=False)
    with pytest.raises(RltunerError, match="learning_rate cannot be changed"):
        RLTuner.load(tmp_path, {"learning_rate": 0.5})
    with pytest.raises(RltunerError, match="user rules"):
        RLTuner.load(tmp_path, {"rules": ["examples/rules/neighbour_keys.py:neighbour_keys"]})
    assert RLTuner.load(tmp_path, {"steps": 3200, "threads": 1}).config.steps == 3200


def test_generate_api_validates_before_writing(tmp_path, tiny_note_rnn):
    from rltuner.errors import RltunerError
    from rltuner.generate import generate

    for kw in ({"n": 0}, {"length": 0}, {"n": -3}):
        with pytest.raises(RltunerError, match="at least 1|>= 1"):
            generate(tiny_note_rnn, tmp_path / "g", **kw)
    assert not (tmp_path / "g").exists()


def _subcommand_parsers(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subcommand_parsers(sub, (*prefix, name))


def test_every_option_of_every_subcommand_has_help():
    parser = build_parser(["note-rnn", "train"])  # note-rnn train adds its torch options
    seen = 0
    for name, sub in _subcommand_parsers(parser):
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            where = f"rltuner {' '.join(name)} {'/'.join(action.option_strings) or action.dest}"
            text = action.help or ""
            assert text.strip(), f"{where} has no help"
            assert text.count("(default") <= 1, f"{where}: {text}"
            assert "default: None" not in text, f"{where}: {text}"
            assert "SPEC" not in text and "§" not in text, f"{where}: {text}"
            assert "ignore" not in text, f"{where}: {text}"
            seen += 1
    assert seen > 80  # tune alone has ~40 options


def test_help_prints_and_names_defaults_once(cli):
    with pytest.raises(SystemExit) as e:
        cli("tune", "--help")
    assert e.value.code == 0


def test_wrong_checkpoint_kind_and_architecture_mismatch(tmp_path, tiny_note_rnn, cli):
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    # a safetensors file that is not a Note RNN checkpoint
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": np.zeros(3, "float32")}, str(foreign))
    cli("generate", "--model", foreign, "--out", tmp_path / "g").assert_clear_error(
        "foreign.safetensors"
    )
    # tensors that do not fit the architecture in the metadata
    with safe_open(str(tiny_note_rnn), "numpy") as f:
        meta = f.metadata()
    d = json.loads(meta["rltuner"])
    d["config"]["layer_sizes"] = [32]
    arrays = load_file(str(tiny_note_rnn))
    bad = tmp_path / "mismatch.safetensors"
    save_file(arrays, str(bad), metadata={"rltuner": json.dumps(d)})
    for cmd in (
        ["generate", "--model", bad, "--out", tmp_path / "g"],
        ["tune", "--note-rnn", bad, "--out", tmp_path / "r"],
    ):
        cli(*cmd).assert_clear_error("mismatch.safetensors", "architecture mismatch")


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


def test_debug_shows_traceback(tmp_path, cli_process):
    """The installed entry point (its own process); --debug shows the traceback."""
    p = cli_process("--debug", "generate", "--primer", FIX / "corrupt.mid",
                    "--out", tmp_path / "g", "--model", FIX / "missing.safetensors")  # fmt: skip
    assert p.returncode != 0 and "Traceback" in p.stderr
    p = cli_process("generate", "-n", "0", "--out", tmp_path / "g")
    p.assert_clear_error("-n must be at least 1")

"""--config FILE.toml / --print-config on every command; a run repeats from its config.toml."""

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np

from rltuner.checkpoint import load_arrays

FIXTURES = Path(__file__).parent / "fixtures"


def rltuner(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rltuner.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)  # fmt: skip


def test_tune_repeats_a_run_from_its_config_toml(tiny_note_rnn, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    r = rltuner("tune", "--note-rnn", tiny_note_rnn, "--steps", 960, "--eval-every", 480,
                "--num-envs", 16, "--memory-size", 1000, "--eval-compositions", 8,
                "--final-compositions", 16, "--num-samples", 1, "--seed", 9, "--weight",
                "motif=0.5", "--quiet", "--out", first, "--no-report")  # fmt: skip
    assert r.returncode == 0, r.stderr
    saved = tomllib.loads((first / "config.toml").read_text())
    assert saved["steps"] == 960 and saved["seed"] == 9 and saved["weights"] == {"motif": 0.5}
    r = rltuner("tune", "--config", first / "config.toml", "--out", second, "--quiet")
    assert r.returncode == 0, r.stderr
    a, _ = load_arrays(first / "tuned.safetensors")
    b, _ = load_arrays(second / "tuned.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    # flags override the file
    r = rltuner("tune", "--config", first / "config.toml", "--steps", 123, "--print-config")
    printed = tomllib.loads(r.stdout)
    assert printed["steps"] == 123 and printed["seed"] == 9


def test_generate_config(tiny_note_rnn, tmp_path):
    cfg = tmp_path / "gen.toml"
    cfg.write_text(f'model = "{tiny_note_rnn}"\nn = 2\nlength = 16\nseed = 3\n'
                   f'out = "{tmp_path / "gen"}"\n')  # fmt: skip
    r = rltuner("generate", "--config", cfg, "--seed", 4, "--print-config")
    assert r.returncode == 0, r.stderr
    printed = tomllib.loads(r.stdout)
    assert printed["n"] == 2 and printed["length"] == 16 and printed["seed"] == 4
    r = rltuner("generate", "--config", cfg, "--quiet")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "gen").glob("*.mid"))) == 2


def test_evaluate_config(tiny_note_rnn, tmp_path):
    cfg = tmp_path / "ev.toml"
    cfg.write_text(f'models = ["{tiny_note_rnn}"]\ncompositions = 64\nkey = "D minor"\n')
    r = rltuner("evaluate", "--config", cfg, "--compositions", 32, "--print-config")
    assert r.returncode == 0, r.stderr
    printed = tomllib.loads(r.stdout)
    assert printed["compositions"] == 32 and printed["key"] == "D minor"
    assert printed["models"] == [str(tiny_note_rnn)]
    r = rltuner("evaluate", "--config", cfg, "--compositions", 32, "--workers", 1, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "Notes not in key" in r.stdout


def test_data_build_and_note_rnn_train_config(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mid").write_bytes((FIXTURES / "key_stated_d_major.mid").read_bytes())
    cfg = tmp_path / "data.toml"
    cfg.write_text(f'input_dir = "{src}"\nout = "{tmp_path / "d.npz"}"\nkey = "G major"\n')
    r = rltuner("data", "build", "--config", cfg, "--print-config")
    assert tomllib.loads(r.stdout)["key"] == "G major"
    r = rltuner("data", "build", "--config", cfg, "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d.npz").exists()

    nt = tmp_path / "nt.toml"
    nt.write_text(f'data = "{tmp_path / "d.npz"}"\nlayer_sizes = "32,32"\n')
    r = rltuner("note-rnn", "train", "--config", nt, "--layer-sizes", "16", "--print-config")
    assert r.returncode == 0, r.stderr
    printed = tomllib.loads(r.stdout)
    assert printed["layer_sizes"] == "16" and printed["data"] == str(tmp_path / "d.npz")
    assert "learning_rate" in printed  # the training options are part of the same file


def test_config_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("n = 2\nnot_an_option = 1\n")
    r = rltuner("generate", "--config", bad)
    assert r.returncode == 2 and "unknown option(s) ['not_an_option']" in r.stderr
    r = rltuner("tune", "--config", bad, "--print-config")
    assert r.returncode == 2 and "unknown option(s)" in r.stderr
    (tmp_path / "broken.toml").write_text("n = \n")
    r = rltuner("data", "build", "--config", tmp_path / "broken.toml")
    assert r.returncode == 2 and "not a valid TOML config" in r.stderr
    r = rltuner("evaluate", "--compositions", 5)
    assert r.returncode == 2 and "needs at least one MODEL" in r.stderr

"""Shared fixtures: tiny Note RNN checkpoints (no training needed), one small tuning
configuration for every test that tunes, and the ``rltuner`` command run in-process or as a
process."""

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# One small run for every test that tunes: 3,200 steps, two evaluation windows, 16 compositions
# in parallel. Tests override single fields (``small_config(steps=1600)``).
SMALL_RUN = dict(
    steps=3200,
    eval_every=1600,
    exploration_period=1600,
    memory_size=4000,
    num_envs=16,
    eval_compositions=8,
    final_compositions=32,
    num_samples=1,
    seed=3,
    report=False,
)


@pytest.fixture
def load_script():
    """``load_script(name)``: the module ``scripts/NAME.py`` (the scripts are not a package),
    executed afresh."""

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def config_flags(values: dict) -> list[str]:
    """``TunerConfig`` field values as ``rltuner tune`` flags."""
    out: list[str] = []
    for k, v in values.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + flag[2:])
        else:
            out += [flag, str(v)]
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the numba kernels before the first test, saying so: on a fresh checkout that
    takes tens of seconds, and a silent test run looks hung (CI)."""
    from rltuner.warmup import ensure_compiled

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    log = reporter.write_line if reporter is not None else None
    ensure_compiled(0, announce=True, log=log)


@pytest.fixture(scope="session")
def tiny_note_rnn(tmp_path_factory) -> Path:
    import torch

    from rltuner.note_rnn import NoteRNN, NoteRNNConfig, save_note_rnn

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_note_rnn(path, NoteRNN(NoteRNNConfig((24,))))
    return path


@pytest.fixture
def small_config(tiny_note_rnn):
    """``small_config(**fields) -> TunerConfig``: :data:`SMALL_RUN` on the tiny Note RNN."""
    from rltuner.tuner import TunerConfig

    def make(**fields) -> TunerConfig:
        return TunerConfig(**{"note_rnn": str(tiny_note_rnn), **SMALL_RUN, **fields})

    return make


@pytest.fixture
def small_tune_args(tiny_note_rnn):
    """``small_tune_args(**fields) -> ["tune", flags...]``: the same run as :func:`small_config`
    for the command line (add ``--out``)."""

    def make(**fields) -> list[str]:
        values = {"note_rnn": str(tiny_note_rnn), **SMALL_RUN, **fields}
        return ["tune", *config_flags(values), "--quiet"]

    return make


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def assert_clear_error(self, *needles: str) -> str:
        """Exit code 2, one line on stderr holding every needle, no traceback."""
        assert self.returncode == 2, (self.returncode, self.stderr)
        assert "Traceback" not in self.stderr
        lines = [x for x in self.stderr.strip().splitlines() if x.strip()]
        assert len(lines) == 1, self.stderr
        for n in needles:
            assert n in lines[0], lines[0]
        return lines[0]


@pytest.fixture
def cli(capsys):
    """Run ``rltuner ARGS...`` in this process: ``cli(*args) -> CliResult``. An uncaught
    exception (a traceback for the user) fails the test."""
    from rltuner.cli import main

    def run(*args) -> CliResult:
        capsys.readouterr()
        rc = main([str(a) for a in args])
        out = capsys.readouterr()
        return CliResult(rc, out.out, out.err)

    return run


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


@pytest.fixture
def cli_process():
    """Run ``rltuner ARGS...`` as its own process (what a user's shell does): for end-to-end
    tests, signals and kills. ``cli_process(*args, timeout=...) -> CliResult``."""

    def run(*args, timeout: float = 600) -> CliResult:
        p = subprocess.run([sys.executable, "-m", "rltuner.cli", *map(str, args)],
                           capture_output=True, text=True, timeout=timeout, env=_env())  # fmt: skip
        return CliResult(p.returncode, p.stdout, p.stderr)

    return run


@pytest.fixture(scope="session")
def trained_tiny_note_rnn(tmp_path_factory) -> Path:
    """A 1x32 Note RNN trained for ~4 s on 360 melodies of the bundled corpus: small, but its
    outputs have the shape of a real prior (random nets give near-uniform softmaxes)."""
    from rltuner.corpus import load_bundled
    from rltuner.note_rnn import NoteRNNConfig, TrainConfig, train_note_rnn

    train, valid = load_bundled().subset(range(400)).split(0.1, seed=0)
    out = tmp_path_factory.mktemp("trained")
    cfg = TrainConfig(
        learning_rate=0.02,
        num_epochs=8,
        batch_size=64,
        max_sequence_length=64,
        checkpoint_every=0,
        num_threads=1,
        seed=0,
    )
    res = train_note_rnn(
        train.melodies, valid.melodies, cfg, out, NoteRNNConfig((32,)), progress=False
    )
    return res.best_path

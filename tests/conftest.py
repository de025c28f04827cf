"""Shared fixtures: a tiny random Note RNN checkpoint (no training needed)."""

from pathlib import Path

import pytest


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

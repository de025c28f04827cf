"""Shared fixtures: a tiny random Note RNN checkpoint (no training needed)."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_note_rnn(tmp_path_factory) -> Path:
    import torch

    from rltuner.note_rnn import NoteRNN, NoteRNNConfig, save_note_rnn

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_note_rnn(path, NoteRNN(NoteRNNConfig((24,))))
    return path

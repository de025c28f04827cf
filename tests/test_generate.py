"""Sampling, priming (incl. the fixed class-37 quirk), MIDI/PNG output of generate()."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import torch

from rltuner.errors import RltunerError
from rltuner.generate import (
    class_label,
    generate,
    plot_note_probabilities,
    plot_piano_rolls,
    sample_melodies,
)
from rltuner.note_rnn import NoteRNN, NoteRNNConfig, save_note_rnn


def copy_model() -> NoteRNN:
    """A hand-set Note RNN whose most likely next note is always its input."""
    model = NoteRNN(NoteRNNConfig((38,)))
    lstm, eye = model.lstms[0], torch.eye(38)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        lstm.bias_ih_l0[0:38] = 10.0  # input gate open
        lstm.bias_ih_l0[38:76] = -10.0  # forget everything
        lstm.weight_ih_l0[76:114] = 10.0 * eye  # cell candidate = one-hot input
        lstm.bias_ih_l0[114:152] = 10.0  # output gate open
        model.output.weight.copy_(10.0 * eye)
    return model


def small_model(seed: int = 0) -> NoteRNN:
    torch.manual_seed(seed)
    return NoteRNN(NoteRNNConfig((16, 8)))


def test_sampling_is_reproducible_with_a_seed():
    model = small_model()
    a = sample_melodies(model, 5, 20, generator=torch.Generator().manual_seed(7))
    b = sample_melodies(model, 5, 20, generator=torch.Generator().manual_seed(7))
    c = sample_melodies(model, 5, 20, generator=torch.Generator().manual_seed(8))
    assert a.shape == (5, 20) and a.dtype == np.int64
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 37


def test_random_priming_draws_every_class_including_37():
    """The original's randint(0, 36) never primed with class 37 (B5); we draw all 38."""
    melodies = sample_melodies(copy_model(), 2000, 3, generator=torch.Generator().manual_seed(0),
                               most_probable=True)  # fmt: skip
    assert (melodies == melodies[:, :1]).all()  # the copy model repeats its priming observation
    assert set(melodies[:, 0].tolist()) == set(range(38))


def test_primer_sets_state_and_first_observation():
    model = copy_model()
    gen = torch.Generator().manual_seed(0)
    out = sample_melodies(model, 3, 4, generator=gen, primer=np.array([5, 9, 21]),
                          most_probable=True)  # fmt: skip
    assert (out == 21).all()  # observation = argmax after the primer = its last note here
    out = sample_melodies(model, 2, 2, generator=gen, primer=np.array([[5, 6], [7, 30]]),
                          most_probable=True)  # fmt: skip
    assert out.tolist() == [[6, 6], [30, 30]]
    with pytest.raises(ValueError):
        sample_melodies(model, 2, 2, generator=gen, primer=np.zeros((3, 2), dtype=int))


def test_probabilities_and_most_probable():
    model = small_model(1)
    gen = torch.Generator().manual_seed(3)
    mel, probs = sample_melodies(model, 4, 10, generator=gen, most_probable=True,
                                 return_probs=True)  # fmt: skip
    assert probs.shape == (4, 10, 38)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert np.array_equal(mel, probs.argmax(-1))
    _, sharp = sample_melodies(model, 4, 10, generator=gen, temperature=0.1, return_probs=True)
    assert sharp.max(-1).mean() > probs.max(-1).mean()


def test_plots_write_pngs(tmp_path):
    mel = np.array([14, 1, 1, 0, 16, 1, 18, 1, 1, 1, 0, 1, 37, 2, 1, 1])
    p = plot_piano_rolls([mel, mel[::-1]], tmp_path / "roll.png", titles=["a", "b"])
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    probs = np.full((16, 38), 1 / 38)
    p = plot_note_probabilities(probs, mel, tmp_path / "probs.png")
    assert p.stat().st_size > 1000
    assert [class_label(c) for c in (0, 1, 2, 14, 37)] == ["off", "hold", "C3", "C4", "B5"]


def test_generate_writes_midi_and_png(tmp_path):
    ckpt = tmp_path / "model.safetensors"
    save_note_rnn(ckpt, small_model())
    res = generate(ckpt, tmp_path / "out", n=3, length=32, seed=5, qpm=120)
    assert [p.name for p in res.midi_paths] == ["melody_000.mid", "melody_001.mid",
                                                 "melody_002.mid"]  # fmt: skip
    assert res.piano_roll_path.exists() and res.probabilities_path.exists()
    assert res.melodies.shape == (3, 32)
    for p in res.midi_paths:
        pretty_midi.PrettyMIDI(str(p))  # parses
    again = generate(ckpt, tmp_path / "again", n=3, length=32, seed=5, qpm=120)
    assert np.array_equal(res.melodies, again.melodies)


def test_generate_with_midi_primer(tmp_path):
    from rltuner.midi_io import write_midi

    primer = np.array([14, 1, 16, 1, 18, 1, 19, 1] * 4 + [21, 1, 1, 1])
    write_midi(primer, tmp_path / "primer.mid")
    ckpt = tmp_path / "copy.safetensors"
    save_note_rnn(ckpt, copy_model())
    res = generate(ckpt, tmp_path / "out", n=2, length=8, primer_path=tmp_path / "primer.mid",
                   most_probable=True, plot_probabilities=False)  # fmt: skip
    assert res.probabilities_path is None
    # the copy model's most likely note after the primer is the primer's last event
    from rltuner.midi_io import read_midi

    last = int(read_midi(tmp_path / "primer.mid")[0].melody[-1])
    assert res.melodies[:, 0].tolist() == [last, last]


def test_generate_missing_model_names_the_file(tmp_path):
    with pytest.raises(RltunerError, match="nope.safetensors"):
        generate(tmp_path / "nope.safetensors", tmp_path / "out")

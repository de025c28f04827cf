"""Sampling, priming (incl. the fixed class-37 quirk), MIDI/PNG output of generate(), and
generate sampling tuned models as evaluate does (G with its prior)."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import torch

from rltuner.checkpoint import save_arrays
from rltuner.env import Priming
from rltuner.errors import RltunerError
from rltuner.generate import (
    class_label,
    generate,
    plot_note_probabilities,
    plot_piano_rolls,
)
from rltuner.network import Network
from rltuner.note_rnn import NoteRNN, NoteRNNConfig, save_note_rnn
from rltuner.policy import Policy


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


def network_of(model: NoteRNN) -> Network:
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return Network.from_state_dict(sd, model.config.layer_sizes)


def test_sampling_is_reproducible_with_a_seed():
    pol = Policy(network_of(small_model()))
    a = pol.sample(5, 20, seed=7).compositions
    b = pol.sample(5, 20, seed=7).compositions
    c = pol.sample(5, 20, seed=8).compositions
    assert a.shape == (5, 20) and a.dtype == np.int8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 37


def test_random_priming_draws_every_class_including_37():
    """The original's randint(0, 36) never primed with class 37 (B5); we draw all 38."""
    s = Policy(network_of(copy_model())).sample(2000, 3, seed=0, most_probable=True)
    melodies = s.compositions
    assert (melodies == melodies[:, :1]).all()  # the copy model repeats its priming observation
    assert set(melodies[:, 0].tolist()) == set(range(38))
    assert np.array_equal(s.first_obs, melodies[:, 0])


def test_primer_sets_state_and_first_observation():
    net = network_of(copy_model())
    priming = Priming("single_midi", net, [np.array([5, 9, 21])])
    out = Policy(net).sample(3, 4, seed=0, priming=priming, most_probable=True).compositions
    assert (out == 21).all()  # observation = argmax after the primer = its last note here


def test_probabilities_temperature_and_most_probable():
    pol = Policy(network_of(small_model(1)))
    s = pol.sample(4, 10, seed=3, most_probable=True, probs_for=4)
    assert s.probs.shape == (4, 10, 38)
    np.testing.assert_allclose(s.probs.sum(-1), 1.0, atol=1e-5)
    assert np.array_equal(s.compositions, s.probs.argmax(-1))
    sharp = pol.sample(4, 10, seed=3, temperature=0.1, probs_for=4).probs
    assert sharp.max(-1).mean() > s.probs.max(-1).mean()
    with pytest.raises(RltunerError, match="temperature"):
        pol.sample(4, 10, temperature=0.0)


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


@pytest.mark.parametrize("algorithm", ["q", "psi", "g", "pure_rl"])
def test_generate_and_evaluate_give_the_same_melodies(tiny_note_rnn, tmp_path, algorithm):
    """One sampler: for the same seed, `generate` writes the melodies `evaluate` scores."""
    from test_evaluate import make_tuned

    from rltuner.evaluate import load_model, rollout

    run = make_tuned(tmp_path, tiny_note_rnn, algorithm)
    res = generate(run, tmp_path / "out", n=40, length=16, seed=3, plot_probabilities=False)
    ro = rollout(load_model(run), 40, seed=3, num_notes=16, workers=2)
    np.testing.assert_array_equal(res.melodies, ro.compositions)


def test_generate_samples_a_g_model_with_its_prior(tmp_path):
    """A G model acts on G + prior logits. Here G alone prefers class 7 (40 vs 0) and the prior
    prefers class 9 strongly enough (class 7: 40 - 30 = 10, class 9: 0 + 20) that every note of
    the G policy is 9; sampling softmax(G) alone would give 7."""
    from test_evaluate import bias_network

    from rltuner.tuner import RLTuner, TunerConfig

    prior = bias_network({7: -30.0, 9: 20.0}, hidden=4)
    base = tmp_path / "prior.safetensors"
    save_arrays(base, prior.to_state_dict(), {"kind": "note_rnn", "config": {
        "layer_sizes": [4], "num_classes": 38}})  # fmt: skip
    tuner = RLTuner(TunerConfig(algorithm="g", note_rnn=str(base), steps=100))
    tuner.q_network.theta[...] = bias_network({7: 40.0}, hidden=4).theta
    run = tmp_path / "run_g"
    tuner.save(run / "tuned.safetensors")
    res = generate(run, tmp_path / "out", n=20, length=8, seed=0, plot_probabilities=False)
    assert (res.melodies == 9).all()

"""Note RNN: step/forward equivalence, checkpoints, training (mask, resume) and baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rltuner.checkpoint import save_tensors
from rltuner.errors import RltunerError
from rltuner.note_rnn import (
    NoteRNN,
    NoteRNNConfig,
    TrainConfig,
    _pad_batch,
    bundled_note_rnn_path,
    evaluate_note_rnn,
    load_note_rnn,
    save_note_rnn,
    train_note_rnn,
    unigram_bigram_log_perplexity,
)

SCALE = np.array([2, 4, 6, 7, 9, 11, 13, 14, 16, 18, 19, 21, 23, 25, 26])


def toy_melodies(n: int, seed: int, length: tuple[int, int] = (20, 60)) -> list[np.ndarray]:
    """Learnable random walks on the C-major scale, every note followed by one hold."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        steps = int(rng.integers(*length)) // 2
        pos = np.clip(7 + np.cumsum(rng.choice([-1, 1], size=steps)), 0, len(SCALE) - 1)
        m = np.empty(2 * steps, dtype=np.int64)
        m[0::2], m[1::2] = SCALE[pos], 1
        out.append(m)
    return out


def tiny_config(**kw) -> TrainConfig:
    base = dict(learning_rate=1e-2, batch_size=8, max_sequence_length=24, num_epochs=3,
                checkpoint_every=0, seed=3, num_threads=1)  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("sizes", [(16,), (16, 24), (8, 12, 6)])
def test_step_matches_forward(sizes):
    torch.manual_seed(0)
    model = NoteRNN(NoteRNNConfig(sizes))
    x = torch.randint(0, 38, (3, 12))
    start = tuple((torch.randn(3, h), torch.randn(3, h)) for h in sizes)
    for state0 in (None, start):
        logits, final = model(x, state0)
        state = model.initial_state(3) if state0 is None else state0
        steps = []
        for t in range(x.shape[1]):
            out, state = model.step(x[:, t], state)
            steps.append(out)
        torch.testing.assert_close(torch.stack(steps, 1), logits, atol=1e-5, rtol=1e-5)
        for (h1, c1), (h2, c2) in zip(state, final, strict=True):
            torch.testing.assert_close(h1, h2, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(c1, c2, atol=1e-5, rtol=1e-5)


def test_layer_weights_document_the_cell():
    """A hand-written cell from layer_weights()/output_weights() reproduces step()."""
    torch.manual_seed(1)
    model = NoteRNN(NoteRNNConfig((5, 7)))
    x = torch.tensor([0, 37, 14])
    state = tuple((torch.randn(3, h), torch.randn(3, h)) for h in (5, 7))
    with torch.no_grad():
        ref, ref_state = model.step(x, state)
        inp = torch.nn.functional.one_hot(x, 38).float()
        for (w_ih, w_hh, b), (h, c) in zip(model.layer_weights(), state, strict=True):
            assert w_ih.shape == (4 * h.shape[1], inp.shape[1]) and b.shape == (4 * h.shape[1],)
            i, f, g, o = (inp @ w_ih.T + h @ w_hh.T + b).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            inp = torch.sigmoid(o) * torch.tanh(c)
        w, b = model.output_weights()
        torch.testing.assert_close(inp @ w.T + b, ref)
        torch.testing.assert_close(inp, ref_state[-1][0])


def test_config_json_round_trip():
    cfg = NoteRNNConfig((512, 256))
    assert NoteRNNConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError):
        NoteRNNConfig(())


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = NoteRNN(NoteRNNConfig((16, 8)))
    path = tmp_path / "m.safetensors"
    save_note_rnn(path, model, training={"lr": 0.01}, metrics={"valid_accuracy": 0.5})
    loaded, meta = load_note_rnn(path)
    assert meta["kind"] == "note_rnn" and meta["format_version"] == 1
    assert meta["config"] == {"layer_sizes": [16, 8], "num_classes": 38}
    assert meta["encoding"]["min_pitch"] == 48 and meta["encoding"]["no_event"] == 1
    assert meta["training"] == {"lr": 0.01} and meta["metrics"] == {"valid_accuracy": 0.5}
    x = torch.randint(0, 38, (2, 9))
    with torch.no_grad():
        assert torch.equal(model(x)[0], loaded(x)[0])


def test_bad_checkpoints_raise_naming_the_file(tmp_path):
    missing = tmp_path / "missing.safetensors"
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00\x01 not a safetensors file at all")
    foreign = tmp_path / "foreign.safetensors"
    save_tensors(foreign, {"w": torch.zeros(2)}, {"kind": "something_else"})
    mismatch = tmp_path / "mismatch.safetensors"
    small = NoteRNN(NoteRNNConfig((16,)))
    save_tensors(mismatch, dict(small.state_dict()),
                 {"kind": "note_rnn", "format_version": 1,
                  "config": {"layer_sizes": [20], "num_classes": 38}})  # fmt: skip
    cases = [(missing, "no such"), (corrupt, "not a valid"), (foreign, "not a Note RNN"),
             (mismatch, "architecture mismatch")]  # fmt: skip
    for path, words in cases:
        with pytest.raises(RltunerError) as err:
            load_note_rnn(path)
        assert str(path) in str(err.value) and words in str(err.value)


def test_bundled_path_is_in_package_data():
    p = bundled_note_rnn_path()
    assert p.name == "note_rnn.safetensors" and p.parent.name == "data"


def test_first_steps_are_masked():
    x, y, mask = _pad_batch([np.arange(2, 14), np.arange(2, 7)], skip_steps=8)
    assert x.shape == y.shape == mask.shape == (2, 11)
    assert mask[0].tolist() == [False] * 8 + [True] * 3  # 11 predictions, 8 skipped
    assert not mask[1].any()  # 4 predictions, all within the skipped steps
    assert torch.equal(y[0, :11], torch.arange(3, 14))
    model = NoteRNN(NoteRNNConfig((4,)))
    assert evaluate_note_rnn(model, [np.arange(2, 14)])["num_steps"] == 3
    assert evaluate_note_rnn(model, [np.arange(2, 14)], skip_steps=0)["num_steps"] == 11
    assert math.isnan(evaluate_note_rnn(model, [np.arange(2, 10)])["log_perplexity"])


def test_unigram_bigram_by_hand():
    train = [np.array([2, 3, 2, 3])]  # targets 3, 2, 3; pairs (2,3) x2, (3,2) x1
    valid = [np.array([2, 3])]
    r = unigram_bigram_log_perplexity(train, valid, skip_steps=0)
    assert r["num_steps"] == 1
    assert r["unigram_log_perplexity"] == pytest.approx(-math.log(3 / 41))  # (2+1)/(3+38)
    assert r["bigram_log_perplexity"] == pytest.approx(-math.log(3 / 40))  # (2+1)/(2+38)
    # with the default skip, only targets m[t+1] with t >= 8 count
    v = np.array([5] * 9 + [3, 2])
    r = unigram_bigram_log_perplexity(train, [v])
    assert r["num_steps"] == 2
    expected = -(math.log((0 + 1) / (0 + 38)) + math.log((1 + 1) / (1 + 38))) / 2
    assert r["bigram_log_perplexity"] == pytest.approx(expected)  # P(3|5), P(2|3)


def test_training_lowers_validation_loss(tmp_path):
    train, valid = toy_melodies(48, 0), toy_melodies(12, 1)
    before = evaluate_note_rnn(NoteRNN(NoteRNNConfig((16,))), valid)  # untrained, seed irrelevant
    result = train_note_rnn(train, valid, tiny_config(num_epochs=8, learning_rate=3e-2),
                            tmp_path, NoteRNNConfig((16,)), progress=False)  # fmt: skip
    assert result.epochs_completed == 8 and result.steps == 48
    assert result.best_valid_log_perplexity < before["log_perplexity"] - 1.5  # from ~log(38)
    bigram = unigram_bigram_log_perplexity(train, valid)["bigram_log_perplexity"]
    assert result.best_valid_log_perplexity < bigram  # it learnt more than note pairs
    records = [json.loads(line) for line in Path(result.log_path).read_text().splitlines()]
    assert len(records) == 8 and {"valid_accuracy", "valid_log_perplexity"} <= set(records[0])
    best, meta = load_note_rnn(result.best_path)
    assert meta["metrics"]["valid_log_perplexity"] == pytest.approx(
        result.best_valid_log_perplexity
    )
    assert evaluate_note_rnn(best, valid)["log_perplexity"] == pytest.approx(
        result.best_valid_log_perplexity, rel=1e-5
    )


def test_resume_reproduces_uninterrupted_run(tmp_path):
    train, valid = toy_melodies(40, 2), toy_melodies(8, 3)
    cfg = tiny_config(num_epochs=3, checkpoint_every=2)  # 5 steps per epoch
    full = train_note_rnn(train, valid, cfg, tmp_path / "a", NoteRNNConfig((12,)), progress=False)
    part = train_note_rnn(train, valid, tiny_config(num_epochs=3, checkpoint_every=2, max_steps=7),
                          tmp_path / "b", NoteRNNConfig((12,)), progress=False)  # fmt: skip
    assert part.steps == 7 and part.epochs_completed == 1
    resumed = train_note_rnn(train, valid, cfg, tmp_path / "b", NoteRNNConfig((12,)),
                             progress=False)  # fmt: skip
    assert resumed.steps == full.steps == 15 and resumed.epochs_completed == 3
    a, _ = load_note_rnn(full.last_path)
    b, _ = load_note_rnn(resumed.last_path)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    with pytest.raises(RltunerError, match="cannot resume"):
        train_note_rnn(train, valid, tiny_config(learning_rate=0.5), tmp_path / "b",
                       NoteRNNConfig((12,)), progress=False)  # fmt: skip

"""A tuned model carries its prior (issue 17): identity recorded, weights embedded, no silent
substitution, relocatable run directories, old checkpoints still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rltuner.checkpoint import load_arrays, save_arrays
from rltuner.cli import main
from rltuner.errors import RltunerError
from rltuner.evaluate import evaluate_models, load_model
from rltuner.generate import generate
from rltuner.lstm_kernels import NetLayout
from rltuner.network import Network, bundled_note_rnn_path, load_network
from rltuner.policy import load_policy
from rltuner.tuner import RLTuner, TunerConfig


def save_prior(path: Path, seed: int, sizes: tuple[int, ...] = (16,)) -> Path:
    """A Note RNN checkpoint with random weights (a custom prior, not the bundled one)."""
    layout = NetLayout(sizes)
    theta = np.random.default_rng(seed).normal(0, 0.6, layout.num_params).astype(np.float32)
    meta = {"kind": "note_rnn", "config": {"layer_sizes": list(sizes), "num_classes": 38}}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_arrays(path, Network(layout, theta).to_state_dict(), meta)
    return path


def config(prior: Path, **kw) -> TunerConfig:
    base = dict(note_rnn=str(prior), steps=1600, eval_every=800, exploration_period=800,
                memory_size=2000, num_envs=16, eval_compositions=16, final_compositions=64,
                num_samples=2, seed=5, report=False)  # fmt: skip
    base.update(kw)
    return TunerConfig(**base)


def tune(run: Path, prior: Path, **kw) -> RLTuner:
    tuner = RLTuner(config(prior, **kw))
    tuner.train(run, progress=False)
    return tuner


def observe(run: Path, tmp: Path, tag: str, **kw) -> tuple[dict, np.ndarray]:
    """What evaluate and generate give for ``run``: the statistics and the melodies."""
    comp = evaluate_models([load_model(run, **kw)], compositions=200, seed=1, num_notes=32)
    ev = comp.models[0]
    melodies = generate(run, tmp / f"gen_{tag}", n=12, seed=4, plot_probabilities=False,
                        **kw).melodies  # fmt: skip
    return {"table1": ev.table1(), "extra": ev.extra}, melodies


@pytest.mark.parametrize("algorithm", ["q", "g"])
def test_moved_or_deleted_prior_gives_the_same_results(tmp_path, algorithm):
    prior = save_prior(tmp_path / "m2" / "best.safetensors", seed=1)
    run = tmp_path / "t2"
    tune(run, prior, algorithm=algorithm)
    meta = load_arrays(run / "tuned.safetensors")[1]
    assert meta["training"]["prior"]["sha256"] == load_network(prior)[0].weights_hash()
    assert meta["training"]["prior"]["embedded"] is True
    before, mel_before = observe(run, tmp_path, "before")
    shutil.move(tmp_path / "m2", tmp_path / "elsewhere")
    after_move, mel_move = observe(run, tmp_path, "moved")
    shutil.rmtree(tmp_path / "elsewhere")
    after_delete, mel_delete = observe(run, tmp_path, "deleted")
    assert before == after_move == after_delete
    # G's samples depend on the prior: they are unchanged because the embedded one is used
    np.testing.assert_array_equal(mel_before, mel_move)
    np.testing.assert_array_equal(mel_before, mel_delete)


def test_without_embedded_prior_a_missing_or_different_prior_is_refused(tmp_path):
    prior = save_prior(tmp_path / "m2" / "best.safetensors", seed=1)
    run = tmp_path / "t2"
    tune(run, prior, algorithm="g", embed_prior=False)
    arrays, meta = load_arrays(run / "tuned.safetensors")
    assert not any(k.startswith("prior/") for k in arrays)
    assert meta["training"]["prior"]["embedded"] is False
    before, mel_before = observe(run, tmp_path, "before")

    moved = tmp_path / "moved.safetensors"
    shutil.move(prior, moved)
    with pytest.raises(RltunerError, match="--note-rnn") as e:
        load_model(run)
    assert "best.safetensors" in str(e.value) and "missing" in str(e.value)
    with pytest.raises(RltunerError, match="--note-rnn"):
        generate(run, tmp_path / "gen_x", n=2)
    # supplied again with --note-rnn (checked against the hash): the same results
    after, mel_after = observe(run, tmp_path, "supplied", note_rnn=moved)
    assert after == before
    np.testing.assert_array_equal(mel_before, mel_after)

    # a different Note RNN at the old path, or passed explicitly, is refused
    save_prior(prior, seed=2)
    with pytest.raises(RltunerError, match="does not match"):
        load_model(run)
    with pytest.raises(RltunerError, match="does not match"):
        load_model(run, note_rnn=prior)
    if bundled_note_rnn_path().exists():  # never the bundled model in its place
        with pytest.raises(RltunerError):
            load_policy(run, note_rnn=bundled_note_rnn_path())


def test_cli_takes_note_rnn_for_generate_and_evaluate(tmp_path, capsys):
    prior = save_prior(tmp_path / "m2" / "best.safetensors", seed=3)
    run = tmp_path / "t2"
    tune(run, prior, algorithm="g", embed_prior=False)
    moved = tmp_path / "p.safetensors"
    shutil.move(prior, moved)
    assert main(["generate", "--model", str(run), "-n", "2", "--out", str(tmp_path / "g1")]) != 0
    assert "--note-rnn" in capsys.readouterr().err
    assert main(["generate", "--model", str(run), "-n", "2", "--out", str(tmp_path / "g2"),
                 "--note-rnn", str(moved)]) == 0  # fmt: skip
    assert main(["evaluate", str(run), "--compositions", "50", "--note-rnn", str(moved)]) == 0


def test_copied_run_directory_resumes_bit_identical(tmp_path, monkeypatch):
    prior = save_prior(tmp_path / "m2" / "best.safetensors", seed=1)
    full = tune(tmp_path / "full", prior, algorithm="g")
    part = RLTuner(config(prior, algorithm="g"))
    part.train(tmp_path / "runs" / "part", progress=False, stop_after=800)
    # the run folder travels to another place (another machine); the prior stays behind
    shutil.copytree(tmp_path / "runs", tmp_path / "other" / "runs")
    shutil.rmtree(tmp_path / "runs")
    shutil.rmtree(tmp_path / "m2")
    monkeypatch.chdir(tmp_path / "other")
    resumed = RLTuner.load(Path("runs") / "part")
    resumed.train(Path("runs") / "part", progress=False)
    np.testing.assert_array_equal(resumed.learner.q.theta, full.learner.q.theta)
    np.testing.assert_array_equal(resumed.learner.target.theta, full.learner.target.theta)
    a = load_arrays(tmp_path / "full" / "tuned.safetensors")[0]
    b = load_arrays(tmp_path / "other" / "runs" / "part" / "tuned.safetensors")[0]
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    full_stats = json.loads((tmp_path / "full" / "stats.json").read_text())
    part_stats = json.loads((tmp_path / "other" / "runs" / "part" / "stats.json").read_text())
    assert full_stats == part_stats


def _strip_to_old_format(path: Path) -> None:
    """Rewrite a tuned checkpoint as earlier versions wrote it: no prior identity, no prior
    weights, the base Note RNN only as a path."""
    arrays, meta = load_arrays(path)
    arrays = {k: v for k, v in arrays.items() if not k.startswith("prior/")}
    meta["training"].pop("prior")
    save_arrays(path, arrays, meta)


def test_old_format_checkpoint_loads_with_one_message(tmp_path, capsys):
    prior = save_prior(tmp_path / "m2" / "best.safetensors", seed=1)
    run = tmp_path / "t2"
    tune(run, prior, algorithm="q")
    new = load_model(run)
    _strip_to_old_format(run / "tuned.safetensors")
    capsys.readouterr()
    old = load_model(run)
    np.testing.assert_array_equal(old.reward_rnn.theta, new.reward_rnn.theta)
    load_model(run)  # a second load does not repeat the message
    err = capsys.readouterr().err
    assert err.count("cannot be confirmed") == 1
    assert "older rltuner" in err


def test_old_format_run_checkpoint_resumes_with_the_message(tmp_path, capsys):
    prior = save_prior(tmp_path / "m2" / "best.safetensors", seed=1)
    part = RLTuner(config(prior))
    part.train(tmp_path / "part", progress=False, stop_after=800)
    path = tmp_path / "part" / "checkpoint" / "state.safetensors"
    arrays, meta = load_arrays(path)
    arrays = {k: v for k, v in arrays.items() if not k.startswith("prior/")}
    meta.pop("prior")
    save_arrays(path, arrays, meta)
    capsys.readouterr()
    resumed = RLTuner.load(tmp_path / "part")
    assert "cannot be confirmed" in capsys.readouterr().err
    np.testing.assert_array_equal(resumed.reward_rnn.theta, load_network(prior)[0].theta)


def test_resume_refuses_a_different_prior(tmp_path):
    prior = save_prior(tmp_path / "m2" / "best.safetensors", seed=1)
    part = RLTuner(config(prior, embed_prior=False))
    part.train(tmp_path / "part", progress=False, stop_after=800)
    save_prior(prior, seed=9)  # a different model at the recorded path
    with pytest.raises(RltunerError, match="does not match"):
        RLTuner.load(tmp_path / "part")
    good = save_prior(tmp_path / "again.safetensors", seed=1)
    resumed = RLTuner.load(tmp_path / "part", note_rnn=good)
    assert resumed.step == 800


def test_gym_env_and_python_api_take_the_embedded_prior(tmp_path):
    pytest.importorskip("gymnasium")
    from rltuner.gym import MelodyEnv

    prior = save_prior(tmp_path / "m2" / "best.safetensors", seed=1)
    run = tmp_path / "t2"
    tune(run, prior, algorithm="g")
    want = load_network(prior)[0].theta.copy()
    shutil.rmtree(tmp_path / "m2")
    env = MelodyEnv(model=str(run))  # rewards under the tuned model's prior
    np.testing.assert_array_equal(env._env.reward_rnn.theta, want)
    np.testing.assert_array_equal(load_policy(run).policy.prior.theta, want)
    np.testing.assert_array_equal(RLTuner.load(run).reward_rnn.theta, want)

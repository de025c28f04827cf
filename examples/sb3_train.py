"""Train a Stable-Baselines3 agent on ``rltuner/Melody-v0`` and write its melodies as MIDI.

Needs the optional extra: ``pip install 'rltuner[sb3]'``. A few thousand steps take seconds;
the agent sees the whole composition so far (see :mod:`rltuner.gym`) and is rewarded with
the tuner's reward (Reward-RNN log p(a|s) + scaled music-theory rules)::

    python examples/sb3_train.py --steps 5000 --out sb3_run
    python examples/sb3_train.py --algo ppo --key "D minor" --rule \\
        examples/rules/neighbour_keys.py:neighbour_keys --out sb3_ppo

Writes ``OUT/model.zip`` (SB3's own format: load it with SB3 only from files you trust, it
unpickles) and ``OUT/melody_000.mid`` ... played greedily by the trained agent.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import numpy as np

import rltuner.gym  # noqa: F401  (registers rltuner/Melody-v0)
from rltuner.midi_io import write_midi


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", choices=("dqn", "ppo"), default="dqn", help="SB3 algorithm")
    p.add_argument("--steps", type=int, default=5000, help="environment steps to train")
    p.add_argument("--note-rnn", default=None, help="Note RNN checkpoint (default: bundled)")
    p.add_argument("--key", default="C major", help="key of the music-theory rules")
    p.add_argument("--reward-scaler", type=float, default=2.0, help="c in log p + c*r_MT")
    p.add_argument("--rule", action="append", default=[], help="user rule FILE.py:FUNC")
    p.add_argument("--melodies", type=int, default=4, help="MIDI files to write")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", default="sb3_run", help="output folder")
    args = p.parse_args(argv)

    from stable_baselines3 import DQN, PPO

    env_kwargs = dict(key=args.key, reward_scaler=args.reward_scaler, rules=args.rule,
                      seed=args.seed)  # fmt: skip
    if args.note_rnn:
        env_kwargs["note_rnn"] = args.note_rnn
    env = gym.make("rltuner/Melody-v0", **env_kwargs)
    if args.algo == "dqn":
        model = DQN("MlpPolicy", env, learning_starts=min(500, args.steps // 4), train_freq=4,
                    exploration_fraction=0.5, target_update_interval=250,
                    policy_kwargs=dict(net_arch=[128]), seed=args.seed, verbose=0)  # fmt: skip
    else:
        model = PPO("MlpPolicy", env, n_steps=256, batch_size=64,
                    policy_kwargs=dict(net_arch=[128]), seed=args.seed, verbose=0)  # fmt: skip
    model.learn(total_timesteps=args.steps)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.zip")
    returns = []
    for i in range(args.melodies):
        obs, _ = env.reset(seed=args.seed + 1000 + i)
        done, total = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, done, _, _ = env.step(int(action))
            total += reward
        n = env.unwrapped.num_notes
        write_midi(np.asarray(obs[:n], dtype=np.int64), out / f"melody_{i:03d}.mid")
        returns.append(total)
    summary = {"algo": args.algo, "steps": args.steps, "mean_return": float(np.mean(returns))}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"trained {args.algo} for {args.steps} steps; mean return {summary['mean_return']:.2f}; "
          f"wrote {args.melodies} melodies to {out}/")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

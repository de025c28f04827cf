"""Note RNN throughput: supervised training and batched sampling, at 1 and 2 CPU threads.

Run: ``python benchmarks/bench_note_rnn.py`` (about a minute). Prints a table and writes
``benchmarks/results/note_rnn.json``. Data are synthetic (random walks on the C-major scale);
speed does not depend on what the melodies sound like, only on their lengths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rltuner.checkpoint import atomic_write_text
from rltuner.network import Network
from rltuner.note_rnn import NoteRNN, NoteRNNConfig, TrainConfig, _epoch_windows, _train_step
from rltuner.policy import Policy

SCALE = np.array([2, 4, 6, 7, 9, 11, 13, 14, 16, 18, 19, 21, 23, 25, 26, 28, 30, 31, 33, 35, 37])


def synthetic_melodies(n: int, mean_length: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Melodies with lengths ~ Normal(mean, 60) clipped to 20..600 steps."""
    out = []
    for _ in range(n):
        length = int(np.clip(rng.normal(mean_length, 60), 20, 600))
        pos = np.clip(10 + np.cumsum(rng.integers(-2, 3, size=length)), 0, len(SCALE) - 1)
        m = SCALE[pos]
        m[rng.random(length) < 0.5] = 1  # holds
        out.append(m)
    return out


def time_training(sizes: tuple[int, ...], batches: list[list[np.ndarray]], repeats: int) -> float:
    """Seconds per optimizer step (mean of ``repeats`` after one warm-up step)."""
    torch.manual_seed(0)
    model = NoteRNN(NoteRNNConfig(sizes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    cfg = TrainConfig()
    _train_step(model, opt, batches[0], cfg)
    t0 = time.perf_counter()
    for i in range(repeats):
        _train_step(model, opt, batches[(i + 1) % len(batches)], cfg)
    return (time.perf_counter() - t0) / repeats


def time_sampling(model: NoteRNN, batch: int, length: int, repeats: int) -> float:
    """Melodies per second with the one sampler (rltuner.policy, numba forward pass)."""
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    policy = Policy(Network.from_state_dict(sd, model.config.layer_sizes))
    policy.sample(batch, length, seed=0)
    t0 = time.perf_counter()
    for i in range(repeats):
        policy.sample(batch, length, seed=i)
    return batch * repeats / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "note_rnn.json"))
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    args = ap.parse_args()
    reps = 1 if args.quick else 4
    rng = np.random.default_rng(0)
    cfg = TrainConfig()
    full = [[rng.integers(0, 38, size=cfg.max_sequence_length + 1) for _ in range(128)]
            for _ in range(3)]  # fmt: skip
    corpus = synthetic_melodies(128 * 6, 150.0, rng)  # corpus-like lengths, 150 mean
    corpus_batches = _epoch_windows(corpus, 0, cfg)
    model = NoteRNN(NoteRNNConfig((100,))).eval()

    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        s_full = time_training((100,), full, reps)
        s_corpus = time_training((100,), corpus_batches, reps)
        row = {
            "threads": threads,
            "train_layer_sizes": [100],
            "train_seq_per_s_b128_t192": 128 / s_full,
            "train_s_per_step_b128_t192": s_full,
            "train_s_per_step_corpus_like": s_corpus,
            "train_s_per_epoch_8000_melodies_mean150": s_corpus * 8000 / 128,
            "sample_melodies_per_s_len32_b1": time_sampling(model, 1, 32, 10 * reps),
            "sample_melodies_per_s_len32_b1000": time_sampling(model, 1000, 32, reps),
        }
        results.append(row)
        print(f"threads={threads}: train {row['train_seq_per_s_b128_t192']:.0f} seq/s "
              f"(b128, T192), {row['train_s_per_epoch_8000_melodies_mean150']:.1f} s/epoch "
              f"(8000 melodies, mean length 150); sampling length 32: "
              f"{row['sample_melodies_per_s_len32_b1']:.0f} melodies/s at batch 1, "
              f"{row['sample_melodies_per_s_len32_b1000']:.0f} at batch 1000")  # fmt: skip

    record = {
        "benchmark": "note_rnn",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            # other processes share the cores; a load above the core count slows every number
            "load_average_1_5_15min": list(os.getloadavg()),
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": results,
    }
    out = Path(args.out)
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

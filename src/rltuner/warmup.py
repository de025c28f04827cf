"""Compile the numba kernels ahead of a run, in helper processes.

numba compiles every kernel on first use and caches the machine code next to the sources
(``__pycache__``). The first ``rltuner tune`` after an install would compile ~20 s of kernels
inside the training process, one after the other, and keep ~140 MB of compiler state alive
there for the whole run. :func:`ensure_compiled` instead starts two short-lived processes at
once -- one compiles the update kernel, the other the acting, reward and evaluation kernels --
and returns when both are done; the run (and its report process) then load everything from the
cache. When the cache is already warm it does nothing. A helper that fails costs nothing but
time: whatever is still missing is compiled by the run itself, with the same results.

``python -m rltuner.warmup [update|acting] [--threads N]`` runs one group by hand.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from rltuner import lstm_kernels, naturalness, policy, rewards
from rltuner.env import music_theory_rewards
from rltuner.learner import Learner, LearnerHyper, ReplayMemory
from rltuner.metrics import composition_stats
from rltuner.network import bundled_note_rnn_path, load_network
from rltuner.rewards import RuleTables

__all__ = ["GROUPS", "COMPILE_SECONDS_ESTIMATE", "ensure_compiled", "missing_groups"]

GROUPS = ("update", "acting")


def _has_cache(dispatcher) -> bool:
    """Whether numba's on-disk cache holds a valid compiled version of ``dispatcher``.
    Reads numba's cache index (private API); if that is not possible, answers True so that no
    helper is started for nothing."""
    try:
        return bool(dispatcher._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 -- any change in numba's internals: assume cached
        return True


def missing_groups(threads: int) -> list[str]:
    """The kernel groups that have no valid cache entry yet."""
    parallel = lstm_kernels.uses_parallel_kernel(threads)
    update = lstm_kernels._update_parallel if parallel else lstm_kernels._update_serial
    acting = (lstm_kernels.forward, rewards._step_kernel, rewards._composition_counts_kernel,
              rewards._composition_features_kernel,
              policy._centre, policy._draw, naturalness._count_notes,
              naturalness._ngram_total)  # fmt: skip
    out = []
    if not _has_cache(update):
        out.append("update")
    if not all(_has_cache(d) for d in acting):
        out.append("acting")
    return out


#: Wall time of a cold compile of both groups on a 2-CPU machine (measured 23-79 s here, with
#: other jobs sharing the CPUs; a user saw 56 s).
COMPILE_SECONDS_ESTIMATE = 60


def _print_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_compiled(
    threads: int,
    announce: bool = False,
    groups: Sequence[str] = GROUPS,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """Compile the missing kernel groups (of ``groups``) in parallel helper processes; returns
    the groups that were compiled (empty when the cache was warm). ``announce`` reports a line
    when compiling starts and one as each group is ready (to ``log``, default stderr), so a
    first run is never silent."""
    todo = [g for g in missing_groups(threads) if g in groups]
    if not todo:
        return []
    say = (log or _print_stderr) if announce else (lambda msg: None)
    say(f"compiling the numba kernels (first run only, ~{COMPILE_SECONDS_ESTIMATE} s)...")
    t0 = time.perf_counter()
    procs = {
        g: subprocess.Popen(
            [sys.executable, "-m", "rltuner.warmup", g, "--threads", str(threads)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for g in todo
    }
    while procs:
        for g, p in list(procs.items()):
            if p.poll() is not None:
                del procs[g]
                ok = "ready" if p.returncode == 0 else "not compiled ahead (the run will)"
                say(f"  {g} kernels {ok} ({time.perf_counter() - t0:.0f} s)")
        time.sleep(0.2)
    return todo


def _compile_update(threads: int) -> None:
    """One tiny minibatch update through the real Learner and ReplayMemory (identical argument
    types to a run's)."""
    net, _ = load_network(bundled_note_rnn_path())
    learner = Learner(net.copy(), net, LearnerHyper(), threads=threads)
    stride = 4
    mem = ReplayMemory(64, net.layout.state_size, False, stride, net.zero_state(1))
    s = net.layout.state_size
    for _ in range(16):
        mem.add(np.zeros(stride, np.int8), np.full(stride, -1, np.int32),
                np.zeros(stride, np.int8), np.zeros(stride, np.float32),
                np.zeros((stride, s), np.float32), None)  # fmt: skip
    learner.update(mem, mem.sample_indices(np.random.default_rng(0), 1, 32))


def _compile_acting() -> None:
    """The sampler (network step, scores, draws) for a plain and a G policy, the per-step
    rewards, the Table-1 statistics (totals and per composition) and the naturalness metrics
    of a tiny rollout (the calls a run and an evaluation make)."""
    net, _ = load_network(bundled_note_rnn_path())
    for pol in (policy.Policy(net), policy.Policy(net.copy(), "g", net)):
        s = policy.sample(pol, 8, 32, 0)
    music_theory_rewards(s.compositions, s.first_obs, RuleTables.from_key())
    composition_stats(s.compositions)
    rewards.composition_features(s.compositions, RuleTables.from_key())  # kl_pg's constraints
    naturalness.naturalness_stats(s.compositions, naturalness.bundled_reference())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m rltuner.warmup", description=__doc__)
    ap.add_argument("group", choices=GROUPS)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.group == "update":
        _compile_update(args.threads)
    else:
        _compile_acting()


if __name__ == "__main__":
    main()

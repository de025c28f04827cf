"""Chord conditioning: what a chord-conditioned network sees of the current chord.

A conditioned network's layer 0 reads, besides the one-hot of the observed class (rows 0..37 of
its input weights), :data:`CHORD_INPUTS` = 24 chord features: rows ``38 + pc`` for each pitch
class ``pc`` of the chord sounding at the step being chosen, and row ``50 + root``. The input is
a multi-hot vector, so its product with the weights is a sum of rows; the kernels take the
rows to add as a ``(B, K)`` integer array per step (``-1`` = none, ``K`` = the most features of
one chord). A network made conditioned by :meth:`rltuner.network.Network.with_cond_inputs`
starts with zero rows there, so before tuning it predicts exactly what the Note RNN predicts.

The features at step ``t`` are those of the chord at step ``t`` (the step whose note is being
chosen; the observation is the note of step ``t - 1``). For the transition of a composition's
last step the next features are those of its step 0 (as for a composition that follows).
"""

from __future__ import annotations

import numpy as np

from rltuner.encoding import NUM_CLASSES
from rltuner.harmony import HarmonyTables

__all__ = ["CHORD_INPUTS", "CHORD_FEATURES", "chord_input_rows", "step_rows"]

CHORD_INPUTS = 24
CHORD_FEATURES = "chord_pitch_classes_12+root_12"  # recorded in tuned checkpoints
_PC_ROW = NUM_CLASSES  # 38 + pitch class
_ROOT_ROW = NUM_CLASSES + 12  # 50 + root pitch class


def chord_input_rows(tables: HarmonyTables) -> np.ndarray:
    """``(C, K)`` int8: the input rows of each of the tables' ``C`` chords, ``-1``-padded."""
    rows = []
    for mask, root in zip(tables.chord_mask.tolist(), tables.chord_root.tolist(), strict=True):
        pcs = [pc for pc in range(12) if (mask >> pc) & 1]
        rows.append([_PC_ROW + pc for pc in pcs] + [_ROOT_ROW + int(root)])
    k = max(len(r) for r in rows)
    out = np.full((len(rows), k), -1, dtype=np.int8)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def step_rows(rows: np.ndarray, chord_of: np.ndarray, beat: np.ndarray) -> np.ndarray:
    """``(B, K)`` int64 input rows at step ``beat[b]`` (modulo ``N``) of compositions whose
    chords per step are ``chord_of (B, N)``."""
    n = chord_of.shape[1]
    b = np.arange(chord_of.shape[0])
    return rows[chord_of[b, np.asarray(beat) % n]].astype(np.int64)

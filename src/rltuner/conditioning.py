"""Chord conditioning: what a chord-conditioned network sees of the current chord.

A conditioned network's layer 0 reads, besides the one-hot of the observed class (rows 0..37 of
its input weights), :data:`CHORD_INPUTS` = 24 chord features: rows ``38 + pc`` for each pitch
class ``pc`` of the chord sounding at the step being chosen, and row ``50 + root``. The input is
a multi-hot vector, so its product with the weights is a sum of rows; the kernels take the
rows of each chord as a ``(C, K)`` table (``-1``-padded, ``K`` = the most features of one
chord) and each input's chord per step; they add a chord's rows as one precomputed sum (per
update, not per input: the chords are few). A network made conditioned by
:meth:`rltuner.network.Network.with_cond_inputs` starts with zero rows there, so before tuning
it predicts exactly what the Note RNN predicts.

The features at step ``t`` are those of the chord at step ``t`` (the step whose note is being
chosen; the observation is the note of step ``t - 1``). For the transition of a composition's
last step the next features are those of its step 0 (as for a composition that follows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.encoding import NUM_CLASSES
from rltuner.errors import RltunerError
from rltuner.harmony import HarmonyTables, Progression

__all__ = [
    "CHORD_INPUTS",
    "CHORD_FEATURES",
    "CHORD_STEPS_HELP",
    "chord_input_rows",
    "chord_at",
    "resolve_progressions",
    "harmony_weights",
    "progressions_to_json",
    "progressions_from_json",
]

CHORD_INPUTS = 24
CHORD_FEATURES = "chord_pitch_classes_12+root_12"  # recorded in tuned checkpoints
CHORD_STEPS_HELP = "sixteenth steps per chord of a progression without bar lines (8 = half bar)"
_PC_ROW = NUM_CLASSES  # 38 + pitch class
_ROOT_ROW = NUM_CLASSES + 12  # 50 + root pitch class


def chord_input_rows(tables: HarmonyTables) -> np.ndarray:
    """``(C, K)`` int64: the input rows of each of the tables' ``C`` chords, ``-1``-padded."""
    rows = []
    for mask, root in zip(tables.chord_mask.tolist(), tables.chord_root.tolist(), strict=True):
        pcs = [pc for pc in range(12) if (mask >> pc) & 1]
        rows.append([_PC_ROW + pc for pc in pcs] + [_ROOT_ROW + int(root)])
    k = max(len(r) for r in rows)
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def chord_at(chord_of: np.ndarray, beat: np.ndarray) -> np.ndarray:
    """``(B,)`` int64: the chord at step ``beat[b]`` (modulo ``N``) of compositions whose
    chords per step are ``chord_of (B, N)``."""
    n = chord_of.shape[1]
    return chord_of[np.arange(chord_of.shape[0]), np.asarray(beat) % n].astype(np.int64)


# ------------------------------------------------------------------ progressions of a run
def resolve_progressions(
    chords: Sequence[str], chords_file: str | None, chord_steps: int, num_notes: int
) -> list[Progression]:
    """The progressions a run plays: each ``--chords`` text, then those of ``chords_file`` (a
    text file, one per line; or a MIDI file, whose accompaniment gives one), each checked to
    fit a composition of ``num_notes`` steps. Empty when neither is given."""
    from rltuner.harmony import check_fits, parse_progression, read_progressions

    out = [parse_progression(text, chord_steps, where="--chords") for text in chords]
    if chords_file:
        if Path(chords_file).suffix.lower() in (".mid", ".midi"):
            from rltuner.chord_estimation import progression_from_midi

            out.append(progression_from_midi(chords_file, chord_steps, max_steps=num_notes))
        else:
            out.extend(read_progressions(chords_file, chord_steps))
    for i, prog in enumerate(out):
        where = f"--chords {chords[i]!r}" if i < len(chords) else str(chords_file)
        check_fits(prog, num_notes, where)
    return out


def harmony_weights(weights: Mapping[str, float] | None, rules: Sequence[str] = ()) -> np.ndarray:
    """The weights ``(5,)`` of :data:`rltuner.harmony.HARMONY_RULE_NAMES` in a run with chords:
    the defaults, a rule named in ``rules`` (``--rule neighbour_keys``) weighs 1, and
    ``weights`` overrides both."""
    from rltuner.harmony import DEFAULT_HARMONY_WEIGHTS, HARMONY_RULE_NAMES

    w = dict(DEFAULT_HARMONY_WEIGHTS)
    w.update({r: 1.0 for r in rules if r in HARMONY_RULE_NAMES})
    w.update({k: float(v) for k, v in (weights or {}).items() if k in HARMONY_RULE_NAMES})
    return np.array([w[name] for name in HARMONY_RULE_NAMES], dtype=np.float64)


def progressions_to_json(progressions: Sequence[Progression]) -> list[dict[str, Any]]:
    """The progressions as JSON-able records (a tuned model carries those it was tuned on)."""
    return [
        {"chords": [c.symbol for c in p.chords], "durations": [int(d) for d in p.durations]}
        for p in progressions
    ]


def progressions_from_json(records: Sequence[dict[str, Any]], source: str) -> list[Progression]:
    """Inverse of :func:`progressions_to_json` (``source`` names the file in errors)."""
    from rltuner.harmony import parse_chord

    out = []
    try:
        for r in records:
            chords = tuple(parse_chord(s) for s in r["chords"])
            out.append(Progression(chords, tuple(int(d) for d in r["durations"])))
    except (KeyError, TypeError, ValueError) as e:
        raise RltunerError(f"{source}: bad chord progressions in its metadata ({e})") from None
    return out

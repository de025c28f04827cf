"""Example user reward rule: allow notes of the neighbouring keys (a gentle modulation).

Magenta's issue tracker asked to "allow modulation to nearby keys". The built-in ``key`` rule
gives −1 to every note outside the home key; this rule gives back ``BONUS`` (0.5) for a note
that lies outside the home key but inside one of its two neighbouring keys on the circle of
fifths, the dominant and the subdominant key of the same mode (C major: G major brings F#,
F major brings Bb; so F# and Bb cost −0.5 instead of −1). Every other action scores 0.
With weight 2 (``[weights] neighbour_keys = 2.0``) such notes cost nothing at all.

Use it::

    rltuner tune --rule examples/rules/neighbour_keys.py:neighbour_keys --out runs/neighbour

It is a pure batched function (see :mod:`rltuner.plugins`): no state, inputs untouched.
"""

from __future__ import annotations

import numpy as np

from rltuner.encoding import FIRST_NOTE_CLASS, MIN_PITCH, NUM_CLASSES, Key

BONUS = 0.5


def neighbour_classes(key: Key) -> np.ndarray:
    """(38,) bool: classes whose pitch is in the dominant or subdominant key of ``key`` but
    not in ``key`` itself (rests and holds are never included)."""
    home = set(key.scale_pitch_classes)
    near: set[int] = set()
    for shift in (7, 5):  # dominant, subdominant
        near |= set(Key((key.tonic + shift) % 12, key.mode).scale_pitch_classes)
    pcs = (np.arange(NUM_CLASSES) - FIRST_NOTE_CLASS + MIN_PITCH) % 12
    mask = np.isin(pcs, sorted(near - home))
    mask[:FIRST_NOTE_CLASS] = False
    return mask


def neighbour_keys(
    compositions: np.ndarray, beat: np.ndarray, action: np.ndarray, key: Key
) -> np.ndarray:
    """``BONUS`` where ``action`` is a neighbouring-key note outside the home key, else 0.

    ``compositions (B, N)``, ``beat (B,)`` are unused: this rule looks at the action alone."""
    return np.where(neighbour_classes(key)[action], BONUS, 0.0)

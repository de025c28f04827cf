"""Write a copy of a Note RNN whose output distribution is softmax(logits / T).

Dividing the output layer (weights and bias) by ``T`` gives a sharper (T < 1) or flatter
(T > 1) prior with the same LSTM. Used for the prior-temperature experiment of
``docs/seed_study.md``: the tuned policy depends on how peaked the Reward RNN is.

Usage::

    python scripts/temper_note_rnn.py 1.5 --out models/note_rnn_T1.5.safetensors
    rltuner tune --note-rnn models/note_rnn_T1.5.safetensors --out runs/q_T1.5
"""

from __future__ import annotations

import argparse

import numpy as np

from rltuner.checkpoint import load_arrays, save_arrays
from rltuner.note_rnn import bundled_note_rnn_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("temperature", type=float, help="T > 0: below 1 sharper, above 1 flatter")
    ap.add_argument("--note-rnn", default=None, help="default: the bundled Note RNN")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not args.temperature > 0:
        ap.error("temperature must be positive")
    src = args.note_rnn or str(bundled_note_rnn_path())
    arrays, meta = load_arrays(src, what="Note RNN checkpoint")
    for name in ("output.weight", "output.bias"):
        arrays[name] = (arrays[name].astype(np.float64) / args.temperature).astype(np.float32)
    meta = dict(meta, tempered={"source": src, "temperature": args.temperature})
    save_arrays(args.out, arrays, meta)
    print(f"wrote {args.out} (softmax temperature {args.temperature} of {src})")


if __name__ == "__main__":
    main()

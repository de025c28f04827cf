"""Write the model card of a trained Note RNN: validation accuracy and log-perplexity on the
bundled corpus's validation split, beside unigram and bigram baselines on the same steps.

Usage: python scripts/note_rnn_card.py MODEL.safetensors [--out docs/model_card.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rltuner.corpus import load_bundled
from rltuner.note_rnn import evaluate_note_rnn, load_note_rnn, unigram_bigram_log_perplexity


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--out", default="docs/model_card.md")
    ap.add_argument("--validation-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model, meta = load_note_rnn(args.model)
    train, valid = load_bundled().split(args.validation_fraction, seed=args.seed)
    m = evaluate_note_rnn(model, valid.melodies)
    base = unigram_bigram_log_perplexity(train.melodies, valid.melodies)
    tr = meta.get("training", {})
    settings = json.dumps({k: tr.get(k) for k in ("learning_rate", "num_epochs", "seed")})
    card = f"""# Model card: bundled Note RNN (`rltuner/data/note_rnn.safetensors`)

- **Architecture:** LSTM {meta["config"]["layer_sizes"]} units, one-hot input over 38 classes
  (0 note-off, 1 no-event, 2..37 = MIDI 48..83), linear output to 38 logits.
- **Data:** the bundled folk corpus (12,848 melodies; see README "Data"), melody-level split
  {1 - args.validation_fraction:.0%} / {args.validation_fraction:.0%} with seed {args.seed}:
  {len(train):,} training and {len(valid):,} validation melodies. Non-commercial terms of the
  Essen collection apply to the model as well.
- **Training:** `rltuner note-rnn train` (paper recipe: batch 128, Adam, gradient norm 5, L2
  2.5e-5, lr x0.85 every 1000 steps, first 8 steps of each sequence not counted, sequences up
  to 192 steps). Settings: `{settings}`.

## Validation ({m["num_steps"]:,} counted steps; natural-log log-perplexity = mean NLL per step)

| model | accuracy | log-perplexity |
|---|---|---|
| Note RNN | {m["accuracy"]:.4f} | {m["log_perplexity"]:.4f} |
| bigram (add-one) | {base["bigram_accuracy"]:.4f} | {base["bigram_log_perplexity"]:.4f} |
| unigram (add-one) | {base["unigram_accuracy"]:.4f} | {base["unigram_log_perplexity"]:.4f} |

Training: `rltuner note-rnn train --out models/note_rnn --num-epochs 60` (5,460 steps, 1,107 s
on this project's 2-core machine while other jobs shared it; the best validation epoch was 56).
The paper's Note RNN reached 92% accuracy and log-perplexity 0.2536 on its own 30,000-song MIDI
corpus; numbers from different corpora are not comparable.
"""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(card)
    print(card)


if __name__ == "__main__":
    main()

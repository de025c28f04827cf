"""Build the bundled folk corpus ``src/rltuner/data/corpus.npz`` from music21's own corpus.

Reproducible: same music21 corpus files + same rltuner code => the same dataset, in path order.

    python scripts/build_corpus.py                 # 2 worker processes, cache in ~/.cache
    python scripts/build_corpus.py --workers 1 --no-cache --output /tmp/corpus.npz

Collections (folders of ``music21/corpus``; all ABC):

* ``essenFolksong``  -- the Essen folk song collection as shipped by music21 (about 8,500
  tunes: German ballads and children's songs, Chinese "han" songs, Lorraine, Luxembourg,
  Irish, ...); non-commercial use only (see its license.txt).
* ``oneills1850``    -- Francis O'Neill, "The Music of Ireland" (1903): 1,850 Irish tunes;
  public domain.
* ``ryansMammoth``   -- "Ryan's Mammoth Collection" (1883) of fiddle tunes; public domain.
* ``airdsAirs``      -- James Aird, "A Selection of Scotch, English, Irish and Foreign Airs"
  (1778-1803), transcribed by Jack Campin; public domain collection.

music21 parses ABC slowly (20-60 ms per tune), so files are parsed by a process pool and the
parsed notes of each file are cached (``~/.cache/rltuner/corpus/``): a re-run with other filter
settings takes seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from rltuner.corpus import build_dataset_from_files
from rltuner.encoding import C_MAJOR, FIRST_NOTE_CLASS

COLLECTIONS = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "src" / "rltuner" / "data" / "corpus.npz"


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rltuner" / "corpus"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="dataset file to write")
    ap.add_argument("--workers", type=int, default=2, help="parser processes")
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="parsed-file cache")
    ap.add_argument("--no-cache", action="store_true", help="parse every file again")
    ap.add_argument(
        "--collections",
        nargs="+",
        default=list(COLLECTIONS),
        help="music21 corpus folders to include",
    )
    args = ap.parse_args(argv)

    import music21

    root = Path(music21.__file__).parent / "corpus"
    files: list[Path] = []
    for name in args.collections:
        found = sorted((root / name).glob("*.abc"))
        if not found:
            print(
                f"error: {root / name}: no .abc files (is music21's corpus installed?)",
                file=sys.stderr,
            )
            return 2
        files.extend(found)
    print(
        f"music21 {music21.__version__}: {len(files)} ABC files from {', '.join(args.collections)}"
    )

    start = time.perf_counter()
    dataset, summary = build_dataset_from_files(
        files,
        root,
        progress=True,
        workers=args.workers,
        cache_dir=None if args.no_cache else args.cache_dir,
    )
    print(summary.format())

    per_collection = Counter(s.split("/", 1)[0] for s in dataset.sources)
    steps = Counter()
    for s, m in zip(dataset.sources, dataset.melodies, strict=True):
        steps[s.split("/", 1)[0]] += m.size
    for name in args.collections:
        print(f"  {name:15s} {per_collection[name]:6d} melodies {steps[name]:9d} steps")
    allsteps = np.concatenate(dataset.melodies)
    notes = allsteps[allsteps >= FIRST_NOTE_CLASS]
    in_key = np.isin(notes, C_MAJOR.key_classes).mean()
    modes = Counter(k.split()[-1] for k in dataset.keys)
    lengths = dataset.lengths
    print(f"notes in C major after transposition: {in_key:.1%}; source modes: {dict(modes)}")
    print(
        f"melody length: median {np.median(lengths):.0f} steps, "
        f"min {lengths.min()}, max {lengths.max()}"
    )

    dataset.save(args.output)
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1e6:.2f} MB) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Melody datasets: the bundled folk corpus and datasets built from folders of scores.

A :class:`Dataset` is a list of melodies (int8 class sequences, see :mod:`rltuner.encoding`)
with per-melody metadata. On disk it is one ``.npz`` read with ``allow_pickle=False``:

==================  =============  ===================================================
array               dtype          content
==================  =============  ===================================================
``format``          unicode        ``"rltuner-melody-dataset"``
``version``         int64          1
``steps``           int8 ``(S,)``  all melodies concatenated
``offsets``         int64 ``(N+1,)``  melody ``i`` is ``steps[offsets[i]:offsets[i+1]]``
``titles``          unicode ``(N,)``  tune title
``sources``         unicode ``(N,)``  source file relative to the input folder (``#n`` = tune)
``keys``            unicode ``(N,)``  key before transposition, e.g. ``"G major"``
``transpositions``  int16 ``(N,)``  semitones applied (octave shift included)
==================  =============  ===================================================

:func:`build_dataset` reads MIDI (``.mid``/``.midi``) through :mod:`rltuner.midi_io`, and ABC
(``.abc``, many tunes per file) and MusicXML (``.xml``/``.musicxml``/``.mxl``) through music21
(optional extra ``rltuner[data]``, imported only when such files are read). Both paths produce
:class:`~rltuner.midi_io.NoteTrack` objects and share one splitting / filtering / transposition
function, :func:`~rltuner.midi_io.melodies_from_track`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.checkpoint import load_npz, save_npz
from rltuner.encoding import NUM_CLASSES, STEPS_PER_QUARTER, Key
from rltuner.errors import RltunerError
from rltuner.midi_io import (
    InputFileError,
    NoteTrack,
    describe_dropped,
    load_pretty_midi,
    melodies_from_track,
    tracks_from_pretty_midi,
)

__all__ = [
    "Dataset",
    "BuildSummary",
    "MIDI_SUFFIXES",
    "MUSIC21_SUFFIXES",
    "load_bundled",
    "read_tracks",
    "build_dataset",
    "build_dataset_from_files",
    "find_input_files",
]

FORMAT = "rltuner-melody-dataset"
VERSION = 1
MIDI_SUFFIXES = (".mid", ".midi")
MUSIC21_SUFFIXES = (".abc", ".xml", ".musicxml", ".mxl")
BUNDLED = "data/corpus.npz"
_CACHE_VERSION = "tracks-2"  # bump when read_tracks changes what it returns
_NO_MELODY = "no melody found"


# ----------------------------------------------------------------------------- the dataset


@dataclass(frozen=True, eq=False)
class Dataset:
    """Melodies plus aligned metadata lists (all of length ``len(self)``).

    ``melodies``: int8 arrays ``(T_i,)`` of classes 0..37. Metadata left empty is filled with
    ``""`` / ``0``.
    """

    melodies: list[np.ndarray]
    titles: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    transpositions: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        melodies = []
        for i, m in enumerate(self.melodies):
            a = np.asarray(m)
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"melody {i} must be a 1-D integer array, got {a.dtype} {a.shape}")
            if a.size and (a.min() < 0 or a.max() >= NUM_CLASSES):
                raise ValueError(f"melody {i} has classes outside 0..37")
            melodies.append(a.astype(np.int8))
        n = len(melodies)
        object.__setattr__(self, "melodies", melodies)
        for name, fill in (("titles", ""), ("sources", ""), ("keys", ""), ("transpositions", 0)):
            values = list(getattr(self, name))
            if not values and n:
                values = [fill] * n
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries for {n} melodies")
            object.__setattr__(self, name, [type(fill)(v) for v in values])

    def __len__(self) -> int:
        return len(self.melodies)

    @property
    def lengths(self) -> np.ndarray:
        """Steps per melody, int64 ``(N,)``."""
        return np.array([m.size for m in self.melodies], dtype=np.int64)

    @property
    def num_steps(self) -> int:
        """Total number of sixteenth-note steps."""
        return int(self.lengths.sum())

    def subset(self, indices: Iterable[int]) -> Dataset:
        idx = [int(i) for i in indices]
        return Dataset(
            melodies=[self.melodies[i] for i in idx],
            titles=[self.titles[i] for i in idx],
            sources=[self.sources[i] for i in idx],
            keys=[self.keys[i] for i in idx],
            transpositions=[self.transpositions[i] for i in idx],
        )

    def split(self, validation_fraction: float = 0.1, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Deterministic melody-level split into ``(train, valid)``; both keep dataset order.

        ``round(validation_fraction * N)`` melodies go to ``valid`` (at least 1 and at most
        ``N - 1`` when the fraction is positive and ``N >= 2``)."""
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie in [0, 1), got {validation_fraction}")
        n = len(self)
        n_valid = int(round(validation_fraction * n))
        if validation_fraction > 0 and n >= 2:
            n_valid = min(max(n_valid, 1), n - 1)
        perm = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(perm[n_valid:])), self.subset(np.sort(perm[:n_valid]))

    def save(self, path: str | os.PathLike) -> None:
        """Write the ``.npz`` described in the module docstring, atomically."""
        lengths = self.lengths
        save_npz(
            path,
            format=np.array(FORMAT),
            version=np.array(VERSION, dtype=np.int64),
            steps=np.concatenate(self.melodies) if self.melodies else np.zeros(0, np.int8),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            titles=_str_array(self.titles),
            sources=_str_array(self.sources),
            keys=_str_array(self.keys),
            transpositions=np.array(self.transpositions, dtype=np.int16),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Dataset:
        """Read a dataset file. Raises ``RltunerError`` naming the file when it is missing,
        corrupt, or not an rltuner dataset."""
        z = load_npz(path, what="dataset")
        names = ("steps", "offsets", "titles", "sources", "keys", "transpositions")
        if "format" not in z or z["format"].shape != () or str(z["format"]) != FORMAT:
            raise RltunerError(f"{path}: not an rltuner melody dataset (no '{FORMAT}' marker)")
        if int(z.get("version", np.array(-1))) != VERSION:
            raise RltunerError(
                f"{path}: dataset format version {z.get('version')} is not supported "
                f"(this rltuner reads version {VERSION})"
            )
        missing = [k for k in names if k not in z]
        if missing:
            raise RltunerError(f"{path}: corrupt dataset (missing arrays: {', '.join(missing)})")
        steps, offsets = z["steps"], z["offsets"]
        n = offsets.size - 1
        ok = (
            steps.ndim == 1
            and offsets.ndim == 1
            and n >= 0
            and np.issubdtype(steps.dtype, np.integer)
            and np.issubdtype(offsets.dtype, np.integer)
            and offsets[0] == 0
            and offsets[-1] == steps.size
            and bool(np.all(np.diff(offsets) >= 0))
            and all(z[k].shape == (n,) for k in names[2:])
        )
        if not ok:
            raise RltunerError(f"{path}: corrupt dataset (inconsistent array shapes or offsets)")
        if steps.size and (steps.min() < 0 or steps.max() >= NUM_CLASSES):
            raise RltunerError(f"{path}: corrupt dataset (classes outside 0..{NUM_CLASSES - 1})")
        return cls(
            melodies=[
                steps[a:b].astype(np.int8) for a, b in zip(offsets[:-1], offsets[1:], strict=True)
            ],
            titles=z["titles"].tolist(),
            sources=z["sources"].tolist(),
            keys=z["keys"].tolist(),
            transpositions=z["transpositions"].astype(np.int64).tolist(),
        )


def _str_array(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=str) if values else np.zeros(0, dtype="<U1")


def load_bundled() -> Dataset:
    """The packaged folk corpus (``rltuner/data/corpus.npz``; see the README's Data section)."""
    ref = importlib.resources.files("rltuner").joinpath(BUNDLED)
    with importlib.resources.as_file(ref) as path:
        if not Path(path).exists():
            raise RltunerError(
                f"{path}: the bundled corpus is missing from this installation "
                "(rebuild it with scripts/build_corpus.py)"
            )
        return Dataset.load(path)


# ----------------------------------------------------------------------------- reading files


@dataclass(frozen=True)
class FileTracks:
    """What one input file holds: ``tunes`` scores (a MIDI file is one), and per track its
    title, a source suffix (``"#3"`` for the third tune of an ABC file) and its notes."""

    tunes: int
    tracks: list[tuple[str, str, NoteTrack]]


def _music21() -> Any:
    try:
        import music21
    except ImportError:
        raise RltunerError(
            "reading ABC or MusicXML files needs music21: "
            "pip install 'rltuner[data]' (or pip install music21)"
        ) from None
    return music21


def _key_from_music21(ks: Any) -> Key:
    mode, tonic = getattr(ks, "mode", None), getattr(ks, "tonic", None)
    if tonic is not None and mode in ("major", "minor"):
        return Key(tonic.pitchClass, mode)
    return Key((7 * int(ks.sharps)) % 12, "major")  # church modes: the major key of the signature


def _track_from_music21(part: Any, name: str) -> NoteTrack | None:
    m21 = _music21()
    flat = part.flatten()
    pitch: list[int] = []
    onset: list[float] = []
    end: list[float] = []
    for n in flat.notes:
        if isinstance(n, m21.harmony.ChordSymbol) or n.duration.isGrace or n.quarterLength <= 0:
            continue
        p = max(x.midi for x in n.pitches) if n.isChord else n.pitch.midi
        off = float(flat.elementOffset(n))
        stop = off + float(n.quarterLength)
        tie = getattr(n.tie, "type", None)
        if tie in ("stop", "continue") and pitch and pitch[-1] == p and abs(end[-1] - off) < 1e-6:
            end[-1] = stop  # a tied continuation extends the previous note
            continue
        pitch.append(int(p))
        onset.append(off)
        end.append(stop)
    if not pitch:
        return None
    on = np.rint(np.array(onset) * STEPS_PER_QUARTER).astype(np.int64)
    off_steps = np.rint(np.array(end) * STEPS_PER_QUARTER).astype(np.int64)
    # the most frequent bar length (pickup bars sometimes carry their own short signature)
    bars = Counter(
        max(int(round(float(ts.barDuration.quarterLength) * STEPS_PER_QUARTER)), 1)
        for ts in flat.getElementsByClass(m21.meter.TimeSignature)
    )
    steps_per_bar = max(bars.items(), key=lambda kv: (kv[1], kv[0]))[0] if bars else 16
    keys = tuple(
        (int(round(float(flat.elementOffset(k)) * STEPS_PER_QUARTER)), _key_from_music21(k))
        for k in flat.getElementsByClass(m21.key.KeySignature)
    )
    return NoteTrack(
        name,
        np.array(pitch, dtype=np.int64),
        on,
        np.maximum(off_steps - on, 1),
        steps_per_bar,
        keys,
    )


_SANE_METER = re.compile(
    r"\s*(?:C\|?|none|\d{1,2}(?:\+\d{1,2})*/(?:1|2|4|8|16|32|64))?\s*", re.IGNORECASE
)


# a note (letter, accidentals/octave marks) with a length multiplier of 3+ digits, in tune body
# lines (not header fields): legal ABC, but music21 takes 10+ s per such note (found by fuzzing)
_ABC_MAX_NOTE_UNITS = 100
_ABC_LONG_NOTE = re.compile(r"[A-Ga-gz][,']*(\d{3,})")
_ABC_FIELD = re.compile(r"[A-Za-z]:")


def _abc_long_note(text: str) -> str | None:
    """The first note-length multiplier >= 100 in the tune body, or None."""
    for line in text.splitlines():
        if not _ABC_FIELD.match(line):
            m = _ABC_LONG_NOTE.search(line.split("%", 1)[0])
            if m:
                return m.group(1)
    return None


def _sane_abc_meters(text: str) -> str:
    """Replace unreadable ABC meters (``M:4/C34``) by ``M:none``: music21 turns them into
    time signatures whose accent weights take it minutes to compute (found by fuzzing)."""

    def fix(m: re.Match) -> str:
        return m.group(0) if _SANE_METER.fullmatch(m.group(2)) else f"{m.group(1)}none{m.group(3)}"

    text = re.sub(r"^(M:)([^\n%]*)()", fix, text, flags=re.MULTILINE)
    return re.sub(r"(\[M:)([^\]\n]*)(\])", fix, text)


def _read_music21(path: Path) -> FileTracks:
    m21 = _music21()
    try:
        if path.suffix.lower() == ".abc":
            text = _sane_abc_meters(path.read_text(encoding="utf-8", errors="replace"))
            too_long = _abc_long_note(text)
            if too_long:
                raise InputFileError(
                    f"{path}: note length {too_long} units is too long "
                    f"(at most {_ABC_MAX_NOTE_UNITS - 1}; music21 would take minutes on it)",
                    "not a valid abc file",
                )
            parsed = m21.converter.parse(text, format="abc", forceSource=True)
        else:
            parsed = m21.converter.parse(str(path), forceSource=True)
        scores = list(parsed.scores) if isinstance(parsed, m21.stream.Opus) else [parsed]
        tracks = []
        for i, score in enumerate(scores):
            md = score.metadata
            title = (md.title if md is not None and md.title else "") or f"{path.stem} #{i + 1}"
            number = md.number if md is not None and md.number else str(i + 1)
            suffix = f"#{number}" if len(scores) > 1 else ""
            parts = (
                list(score.parts)
                if isinstance(score, m21.stream.Score) and score.parts
                else [score]
            )
            for j, part in enumerate(parts):
                name = (part.partName or "") if len(parts) > 1 else ""
                name = name or (f"part {j + 1}" if len(parts) > 1 else "")
                track = _track_from_music21(part, name)
                if track is not None:
                    tracks.append((title, suffix, track))
    except RltunerError:
        raise
    except Exception as e:  # music21 raises many exception types on bad input
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise InputFileError(
            f"{path}: music21 could not read it ({msg})",
            f"not a valid {path.suffix.lstrip('.')} file",
        ) from None
    return FileTracks(len(scores), tracks)


def read_tracks(path: str | os.PathLike) -> FileTracks:
    """Parse one MIDI/ABC/MusicXML file into note tracks (no filtering yet).

    Raises :class:`~rltuner.midi_io.InputFileError` (an ``RltunerError``) for unreadable files
    and for files without any note outside drum tracks."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        pm = load_pretty_midi(path)
        tracks = tracks_from_pretty_midi(pm)
        if not tracks:
            why = (
                "only drum tracks"
                if any(i.notes for i in pm.instruments)
                else "the file has no notes"
            )
            raise InputFileError(f"{path}: no melody found ({why})", f"{_NO_MELODY} ({why})")
        return FileTracks(1, [(path.stem, "", t) for t in tracks])
    if suffix in MUSIC21_SUFFIXES:
        if not path.is_file():
            raise InputFileError(f"{path}: no such file", "no such file")
        if path.stat().st_size == 0:
            raise InputFileError(f"{path}: empty file (0 bytes)", "empty file")
        result = _read_music21(path)
        if not result.tracks:
            raise InputFileError(f"{path}: no melody found (no notes)", f"{_NO_MELODY} (no notes)")
        return result
    raise InputFileError(
        f"{path}: unsupported file type '{suffix}' "
        f"(use {', '.join(MIDI_SUFFIXES + MUSIC21_SUFFIXES)})",
        "unsupported file type",
    )


# --------------------------------------------------------------------------- per-file cache


def _cache_file(cache_dir: Path, path: Path) -> Path:
    st = path.stat()
    ident = f"{_CACHE_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return cache_dir / f"{hashlib.sha256(ident.encode()).hexdigest()[:32]}.npz"


def _save_cache(file: Path, result: FileTracks | InputFileError) -> None:
    if isinstance(result, InputFileError):
        save_npz(
            file,
            status=np.array("error"),
            reason=np.array(result.reason),
            message=np.array(str(result)),
        )
        return
    tr = [t for _, _, t in result.tracks]
    keys = [(i, s, k.tonic, k.mode == "minor") for i, t in enumerate(tr) for s, k in t.key_changes]
    key_arr = np.array(keys, dtype=np.int64).reshape(-1, 4)
    save_npz(
        file,
        status=np.array("ok"),
        tunes=np.array(result.tunes, dtype=np.int64),
        titles=_str_array([t for t, _, _ in result.tracks]),
        suffixes=_str_array([s for _, s, _ in result.tracks]),
        names=_str_array([t.name for t in tr]),
        steps_per_bar=np.array([t.steps_per_bar for t in tr], dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum([t.pitch.size for t in tr])]).astype(np.int64),
        pitch=np.concatenate([t.pitch for t in tr]) if tr else np.zeros(0, np.int64),
        onset=np.concatenate([t.onset for t in tr]) if tr else np.zeros(0, np.int64),
        duration=np.concatenate([t.duration for t in tr]) if tr else np.zeros(0, np.int64),
        keys=key_arr,
    )


def _load_cache(file: Path) -> FileTracks | InputFileError:
    z = load_npz(file, what="cache")
    if str(z["status"]) == "error":
        return InputFileError(str(z["message"]), str(z["reason"]))
    o, keys = z["offsets"], z["keys"]
    tracks = []
    for i, (title, suffix, name, spb) in enumerate(
        zip(
            z["titles"].tolist(),
            z["suffixes"].tolist(),
            z["names"].tolist(),
            z["steps_per_bar"].tolist(),
            strict=True,
        )
    ):
        sl = slice(int(o[i]), int(o[i + 1]))
        kc = tuple(
            (int(s), Key(int(t), "minor" if m else "major")) for j, s, t, m in keys if j == i
        )
        tracks.append(
            (
                title,
                suffix,
                NoteTrack(name, z["pitch"][sl], z["onset"][sl], z["duration"][sl], int(spb), kc),
            )
        )
    return FileTracks(int(z["tunes"]), tracks)


def _read_file_job(job: tuple[str, str | None]) -> FileTracks | InputFileError:
    """Worker: read one file (through the cache when given); errors are returned, not raised."""
    path, cache = Path(job[0]), job[1]
    cache_file = _cache_file(Path(cache), path) if cache else None
    if cache_file is not None and cache_file.exists():
        try:
            return _load_cache(cache_file)
        except (RltunerError, KeyError, ValueError):
            pass  # unreadable cache entry: parse again
    try:
        result: FileTracks | InputFileError = read_tracks(path)
    except InputFileError as e:
        result = e
    if cache_file is not None:
        _save_cache(cache_file, result)
    return result


# ----------------------------------------------------------------------------- building


@dataclass
class BuildSummary:
    """Counts from :func:`build_dataset`.

    ``files_read``: files that gave at least one melody; ``files_skipped``: the other files,
    counted by reason (``skip_examples`` keeps up to 3 messages per reason). ``tunes_read``:
    scores parsed (an ABC file holds many; a MIDI file counts as one); ``tracks_read``: their
    parts / non-drum MIDI instruments. ``melodies_dropped``: fragments removed by the filters,
    by reason.
    """

    files_found: int = 0
    files_read: int = 0
    files_skipped: dict[str, int] = field(default_factory=dict)
    skip_examples: dict[str, list[str]] = field(default_factory=dict)
    tunes_read: int = 0
    tracks_read: int = 0
    melodies_kept: int = 0
    melodies_dropped: dict[str, int] = field(default_factory=dict)
    total_steps: int = 0
    seconds: float = 0.0

    def format(self) -> str:
        """A short human-readable report."""
        skipped = sum(self.files_skipped.values())
        lines = [
            f"files: {self.files_found} found, {self.files_read} used, {skipped} skipped",
            f"tunes read: {self.tunes_read} ({self.tracks_read} tracks/parts)",
            f"melodies kept: {self.melodies_kept} ({self.total_steps} steps, "
            f"{self.total_steps / STEPS_PER_QUARTER / 4:.0f} 4/4 bars)",
        ]
        if self.melodies_dropped:
            total = sum(self.melodies_dropped.values())
            lines.append(f"fragments dropped: {total} ({describe_dropped(self.melodies_dropped)})")
        for reason, n in sorted(self.files_skipped.items(), key=lambda kv: -kv[1]):
            lines.append(f"skipped {n} file{'s' if n != 1 else ''}: {reason}")
            lines.extend(f"  e.g. {msg}" for msg in self.skip_examples.get(reason, [])[:2])
        lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)


def build_dataset_from_files(
    files: Sequence[str | os.PathLike],
    root: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    workers: int = 1,
    cache_dir: str | os.PathLike | None = None,
    transpose: bool = True,
    key_mode: str = "auto",
    min_bars: float = 2.0,
    min_unique_pitches: int = 3,
    gap_bars: float | None = 1.0,
    target_key: Key | None = None,
) -> tuple[Dataset, BuildSummary]:
    """Build a dataset from explicit files (sources are recorded relative to ``root``).

    Files are parsed by ``workers`` processes (1 = in this process) and, when ``cache_dir`` is
    given, the parsed notes of each file are cached there (keyed by path, size and mtime), so a
    rebuild with other filter settings only re-runs the cheap extraction. A bad file never
    stops the build: it is counted in ``files_skipped`` with its reason.
    """
    start = time.perf_counter()
    paths = [Path(f) for f in files]
    if any(p.suffix.lower() in MUSIC21_SUFFIXES for p in paths):
        _music21()  # fail early and clearly when the optional dependency is missing
    cache = str(Path(cache_dir).expanduser()) if cache_dir is not None else None
    if cache:
        Path(cache).mkdir(parents=True, exist_ok=True)
    jobs = [(str(p), cache) for p in paths]
    summary = BuildSummary(files_found=len(paths))
    skipped: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    melodies, titles, sources, keys, shifts = [], [], [], [], []

    def skip(reason: str, message: str) -> None:
        skipped[reason] += 1
        examples = summary.skip_examples.setdefault(reason, [])
        if len(examples) < 3:
            examples.append(message)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), unit="file", disable=not progress, desc="reading")
    pool = None
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        pool = multiprocessing.Pool(min(workers, len(jobs)))
        results: Iterable[FileTracks | InputFileError] = pool.imap(
            _read_file_job, jobs, chunksize=1
        )
    else:
        results = map(_read_file_job, jobs)
    try:
        for path, result in zip(paths, results, strict=True):
            bar.update(1)
            if isinstance(result, InputFileError):
                skip(result.reason, str(result))
                continue
            rel = _relative(path, root)
            summary.tunes_read += result.tunes
            summary.tracks_read += len(result.tracks)
            file_drops: Counter[str] = Counter()
            kept_before = len(melodies)
            for title, suffix, track in result.tracks:
                ex = melodies_from_track(
                    track,
                    transpose=transpose,
                    key_mode=key_mode,
                    min_bars=min_bars,
                    min_unique_pitches=min_unique_pitches,
                    gap_bars=gap_bars,
                    target_key=target_key,
                )
                file_drops.update(ex.dropped)
                label = (
                    f"{title} [{track.name}]" if track.name and len(result.tracks) > 1 else title
                )
                for m in ex.melodies:
                    melodies.append(m.melody)
                    titles.append(label)
                    sources.append(rel + suffix)
                    keys.append(m.source_key.name)
                    shifts.append(m.transposition)
            dropped.update(file_drops)
            if len(melodies) == kept_before:
                why = f"dropped {describe_dropped(file_drops)}" if file_drops else "no notes"
                skip(_NO_MELODY, f"{path}: no melody found ({why})")
            else:
                summary.files_read += 1
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    dataset = Dataset(melodies, titles, sources, keys, shifts)
    summary.files_skipped = dict(skipped)
    summary.melodies_dropped = dict(dropped)
    summary.melodies_kept = len(dataset)
    summary.total_steps = dataset.num_steps
    summary.seconds = time.perf_counter() - start
    return dataset, summary


def _relative(path: Path, root: str | os.PathLike | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return path.name


def find_input_files(input_dir: str | os.PathLike) -> list[Path]:
    """Supported files under ``input_dir`` (recursive), sorted by path."""
    suffixes = MIDI_SUFFIXES + MUSIC21_SUFFIXES
    return sorted(
        p for p in Path(input_dir).rglob("*") if p.is_file() and p.suffix.lower() in suffixes
    )


def build_dataset(
    input_dir: str | os.PathLike,
    *,
    progress: bool = True,
    workers: int = 1,
    cache_dir: str | os.PathLike | None = None,
    transpose: bool = True,
    key_mode: str = "auto",
    min_bars: float = 2.0,
    min_unique_pitches: int = 3,
    gap_bars: float | None = 1.0,
    target_key: Key | None = None,
) -> tuple[Dataset, BuildSummary]:
    """Build a dataset from every MIDI/ABC/MusicXML file under ``input_dir`` (recursive).

    Options as in :func:`build_dataset_from_files` and :func:`rltuner.midi_io.read_midi`;
    ``target_key`` as in :func:`rltuner.midi_io.melodies_from_track` (default C major).
    Raises ``RltunerError`` when the folder is missing or holds no supported file.
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise RltunerError(f"{root}: no such folder")
    files = find_input_files(root)
    if not files:
        raise RltunerError(
            f"{root}: no MIDI, ABC or MusicXML files found "
            f"(looked for {', '.join(MIDI_SUFFIXES + MUSIC21_SUFFIXES)})"
        )
    return build_dataset_from_files(
        files,
        root,
        progress=progress,
        workers=workers,
        cache_dir=cache_dir,
        transpose=transpose,
        key_mode=key_mode,
        min_bars=min_bars,
        min_unique_pitches=min_unique_pitches,
        gap_bars=gap_bars,
        target_key=target_key,
    )

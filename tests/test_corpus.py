"""Datasets: file format, split, building from folders, and the bundled corpus."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from rltuner.corpus import Dataset, build_dataset, load_bundled
from rltuner.encoding import NUM_CLASSES
from rltuner.errors import RltunerError
from rltuner.midi_io import DROP_SHORT

FIX = Path(__file__).parent / "fixtures"


def small_dataset(n: int = 20) -> Dataset:
    rng = np.random.default_rng(1)
    melodies = [
        np.r_[rng.integers(2, 38), rng.integers(0, 38, size=rng.integers(1, 40))] for _ in range(n)
    ]
    return Dataset(
        melodies,
        titles=[f"Tune {i} — ünïcode" for i in range(n)],
        sources=[f"folder/file{i % 3}.abc#{i}" for i in range(n)],
        keys=["G major" if i % 2 else "E minor" for i in range(n)],
        transpositions=[(i % 12) - 6 for i in range(n)],
    )


def test_save_load_round_trip(tmp_path):
    ds = small_dataset()
    ds.save(tmp_path / "d.npz")
    back = Dataset.load(tmp_path / "d.npz")
    assert len(back) == len(ds) and back.num_steps == ds.num_steps
    assert all(
        np.array_equal(a, b) and b.dtype == np.int8
        for a, b in zip(ds.melodies, back.melodies, strict=True)
    )
    for name in ("titles", "sources", "keys", "transpositions"):
        assert getattr(back, name) == getattr(ds, name)


def test_empty_dataset_and_default_metadata(tmp_path):
    Dataset([]).save(tmp_path / "e.npz")
    assert len(Dataset.load(tmp_path / "e.npz")) == 0
    ds = Dataset([np.array([2, 1, 0])])
    assert ds.titles == [""] and ds.transpositions == [0]
    with pytest.raises(ValueError):
        Dataset([np.array([2, 38])])
    with pytest.raises(ValueError):
        Dataset([np.array([2, 3])], titles=["a", "b"])


def test_split_deterministic_and_disjoint():
    ds = small_dataset(50)
    train, valid = ds.split(0.2, seed=3)
    train2, valid2 = ds.split(0.2, seed=3)
    assert (len(train), len(valid)) == (40, 10)
    assert train.titles == train2.titles and valid.titles == valid2.titles
    assert not set(train.titles) & set(valid.titles)
    assert set(train.titles) | set(valid.titles) == set(ds.titles)
    assert ds.split(0.2, seed=4)[1].titles != valid.titles
    assert len(small_dataset(3).split(0.1)[1]) == 1  # at least one validation melody
    with pytest.raises(ValueError):
        ds.split(1.0)


def test_load_bad_files_raise_rltuner_error(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    np.savez(
        tmp_path / "pickled.npz",
        format=np.array("rltuner-melody-dataset"),
        steps=np.array([{"a": 1}], dtype=object),
    )
    small_dataset().save(tmp_path / "ok.npz")
    z = dict(np.load(tmp_path / "ok.npz"))
    z["offsets"] = z["offsets"][:-1]
    np.savez(tmp_path / "inconsistent.npz", **z)
    for name, phrase in [
        ("missing.npz", "no such"),
        ("junk.npz", "not a valid"),
        ("foreign.npz", "not an rltuner"),
        ("pickled.npz", "refused"),
        ("inconsistent.npz", "corrupt"),
    ]:
        with pytest.raises(RltunerError, match=phrase) as err:
            Dataset.load(tmp_path / name)
        assert name in str(err.value)


def write_musicxml(path: Path) -> None:
    music21 = pytest.importorskip("music21")
    s = music21.stream.Stream()
    s.append(music21.meter.TimeSignature("4/4"))
    s.append(music21.key.Key("F"))
    for name in ["F4", "G4", "A4", "B-4", "C5", "A4", "F4", "C5", "D5", "C5", "A4", "F4"]:
        s.append(music21.note.Note(name, quarterLength=1.0))
    s.append(music21.chord.Chord(["F4", "A4", "C5"], quarterLength=4.0))  # highest note: C5
    s.write("musicxml", fp=str(path))


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    for name in (
        "polyphonic.mid",
        "gap_split.mid",
        "short_fragment.mid",
        "two_tunes.abc",
        "corrupt.mid",
        "drums_only.mid",
    ):
        shutil.copy(FIX / name, folder / name)
    (folder / "sub").mkdir()
    write_musicxml(folder / "sub" / "score.musicxml")
    (folder / "notes.txt").write_text("ignored: not a music file")
    return folder


def test_build_dataset_from_mixed_folder(mixed_folder):
    ds, summary = build_dataset(mixed_folder, progress=False)
    assert summary.files_found == 7 and summary.files_read == 5
    assert summary.files_skipped == {
        "not a valid MIDI file": 1,
        "no melody found (only drum tracks)": 1,
    }
    assert summary.tunes_read == 6  # three MIDI files, two ABC tunes, one MusicXML score
    assert summary.melodies_kept == len(ds) == 1 + 2 + 1 + 2 + 1
    assert summary.melodies_dropped == {DROP_SHORT: 1}
    assert summary.total_steps == ds.num_steps
    assert "corrupt.mid" in summary.skip_examples["not a valid MIDI file"][0]
    text = summary.format()
    assert "7 found, 5 used, 2 skipped" in text and "only drum tracks" in text

    by_source = dict(
        zip(ds.sources, zip(ds.titles, ds.keys, ds.transpositions, strict=True), strict=False)
    )
    assert by_source["two_tunes.abc#1"] == ("First Tune", "G major", 5)
    assert by_source["two_tunes.abc#2"] == ("Second Tune", "A minor", 0)
    title, key, shift = by_source["sub/score.musicxml"]
    assert key == "F major" and shift in (-5, 7)
    xml = ds.melodies[ds.sources.index("sub/score.musicxml")]
    assert xml.size == 64 and xml[48] == 72 + shift - 46  # chord -> its highest note
    for m in ds.melodies:
        assert m.dtype == np.int8 and m[0] >= 2 and m.max() < NUM_CLASSES


def test_build_dataset_workers_and_cache_give_same_result(mixed_folder, tmp_path):
    plain, _ = build_dataset(mixed_folder, progress=False)
    cache = tmp_path / "cache"
    first, s1 = build_dataset(mixed_folder, progress=False, workers=2, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 7
    second, s2 = build_dataset(mixed_folder, progress=False, cache_dir=cache)
    for ds in (first, second):
        assert ds.sources == plain.sources and ds.keys == plain.keys
        assert all(np.array_equal(a, b) for a, b in zip(ds.melodies, plain.melodies, strict=True))
    assert s1.files_skipped == s2.files_skipped


def test_build_dataset_folder_errors(tmp_path, monkeypatch):
    with pytest.raises(RltunerError, match="no such folder"):
        build_dataset(tmp_path / "nope", progress=False)
    with pytest.raises(RltunerError, match="no MIDI, ABC or MusicXML files"):
        build_dataset(tmp_path, progress=False)
    shutil.copy(FIX / "two_tunes.abc", tmp_path / "t.abc")
    monkeypatch.setitem(sys.modules, "music21", None)  # as if the extra were not installed
    with pytest.raises(RltunerError, match=r"needs music21: pip install 'rltuner\[data\]'"):
        build_dataset(tmp_path, progress=False)


def test_bundled_corpus_loads():
    ds = load_bundled()
    assert len(ds) > 1000
    steps = np.concatenate(ds.melodies)
    assert steps.min() >= 0 and steps.max() < NUM_CLASSES
    assert all(m[0] >= 2 for m in ds.melodies)
    assert len(ds.sources) == len(ds) and ds.sources[0]

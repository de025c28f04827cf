"""Fuzzed inputs: mutated MIDI files and ABC strings never crash or hang the readers.

Every outcome must be a parsed melody or the project's own :class:`RltunerError`; any other
exception, or a case running past its deadline, fails the test. Mutations start from the
fixture files (``tests/fixtures``): bit flips, random bytes, insertions, deletions and
truncations. Counts: ``RLTUNER_FUZZ_MIDI`` (default 10,000) and ``RLTUNER_FUZZ_ABC``
(default 150: music21 parses ~10-50 ABC tunes a second). The outcome tallies are printed
(``pytest -s``). Found so far: unreadable meters (``M:4/C34``) took music21 13-50 s in
``bestTimeSignature`` -- :func:`rltuner.corpus.read_tracks` now replaces them by ``M:none``.
"""

import collections
import os
import random
import signal
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rltuner.errors import RltunerError
from rltuner.midi_io import read_midi

FIXTURES = Path(__file__).parent / "fixtures"
MIDI_CASES = int(os.environ.get("RLTUNER_FUZZ_MIDI", "10000"))
ABC_CASES = int(os.environ.get("RLTUNER_FUZZ_ABC", "150"))
MIDI_DEADLINE_S = 5.0
ABC_DEADLINE_S = 10.0  # music21 needs seconds for some legal-but-absurd note lengths


class CaseTimeout(BaseException):  # not an Exception: readers' `except Exception` can't hide it
    pass


@contextmanager
def deadline(seconds: float):
    """Raise :class:`CaseTimeout` in this (main) thread after ``seconds``."""

    def on_alarm(signum, frame):
        raise CaseTimeout(f"case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def scratch():
    """A scratch folder, in RAM where possible (file creation dominates the MIDI loop)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=base) as d:
        yield Path(d)


def mutate_bytes(data: bytes, rng: random.Random, keep_header: bool) -> bytes:
    b = bytearray(data)
    lo = 14 if keep_header and len(b) > 14 else 0  # MThd chunk: mutate the tracks more often
    for _ in range(rng.randint(1, 4)):
        lo = min(lo, len(b))
        op = rng.randrange(6)
        if op == 0 and len(b) > lo:  # flip one bit
            i = rng.randrange(lo, len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and len(b) > lo:  # random byte (delta times, status bytes, lengths)
            b[rng.randrange(lo, len(b))] = rng.choice((0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2:  # insert random bytes
            i = rng.randrange(lo, len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and b:  # truncate
            del b[rng.randrange(len(b)) :]
        elif op == 4 and len(b) > lo:  # delete a range
            i = rng.randrange(lo, len(b))
            del b[i : i + rng.randint(1, 16)]
        elif op == 5 and len(b) > lo + 4:  # duplicate a range
            i = rng.randrange(lo, len(b) - 4)
            b[i:i] = b[i : i + rng.randint(1, 32)]
    return bytes(b)


def _midi_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.glob("*.mid")) if p.stat().st_size]


def _classify(exc: BaseException | None) -> str:
    if exc is None:
        return "parsed"
    if isinstance(exc, CaseTimeout) or isinstance(exc.__context__, CaseTimeout):
        return "HANG"
    if isinstance(exc, RltunerError):
        return f"RltunerError: {getattr(exc, 'reason', '') or 'other'}"
    return f"CRASH {type(exc).__name__}"


def test_mutated_midi_files(scratch):
    seeds = _midi_seeds()
    assert len(seeds) >= 8
    rng = random.Random(20240505)
    outcomes: collections.Counter[str] = collections.Counter()
    crashes: list[tuple[str, bytes]] = []
    slowest = 0.0
    target = scratch / "case.mid"
    for _ in range(MIDI_CASES):
        data = mutate_bytes(rng.choice(seeds), rng, keep_header=rng.random() < 0.7)
        target.write_bytes(data)
        exc = None
        t0 = time.perf_counter()
        try:
            with deadline(MIDI_DEADLINE_S):
                melodies = read_midi(target)
            assert melodies and all(m.melody.size for m in melodies)
        except (Exception, CaseTimeout) as e:  # noqa: BLE001 - classified below
            exc = e
        slowest = max(slowest, time.perf_counter() - t0)
        kind = _classify(exc)
        outcomes[kind] += 1
        if kind.startswith(("CRASH", "HANG")):
            crashes.append((f"{kind}: {exc}", data))
    print(f"\nMIDI fuzz: {MIDI_CASES} cases, slowest {slowest:.3f} s: {dict(outcomes)}")
    assert sum(outcomes.values()) == MIDI_CASES
    assert not crashes, crashes[:3]
    assert outcomes["parsed"] > 0 and len(outcomes) > 2  # the mutations reach both paths


def _abc_tunes() -> list[str]:
    text = (FIXTURES / "two_tunes.abc").read_text()
    return [t.strip() + "\n" for t in text.split("\n\n") if t.strip()]


ABC_ALPHABET = "ABCDEFGabcdefgz^_=,'/|:[]()<>-~.0123456789KLMTX: \n%!\"{}#"


def mutate_text(text: str, rng: random.Random) -> str:
    s = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and s:
            s[rng.randrange(len(s))] = rng.choice(ABC_ALPHABET)
        elif op == 1:
            i = rng.randrange(len(s) + 1)
            s[i:i] = rng.choices(ABC_ALPHABET, k=rng.randint(1, 6))
        elif op == 2 and s:
            i = rng.randrange(len(s))
            del s[i : i + rng.randint(1, 10)]
        elif op == 3 and s:
            del s[rng.randrange(len(s)) :]
    return "".join(s)


def test_mutated_abc_strings(scratch, capfd):
    pytest.importorskip("music21")
    from rltuner.corpus import read_tracks

    tunes = _abc_tunes()
    rng = random.Random(7)
    outcomes: collections.Counter[str] = collections.Counter()
    crashes = []
    slowest = 0.0
    target = scratch / "case.abc"
    for _ in range(ABC_CASES):
        text = mutate_text(rng.choice(tunes), rng)
        target.write_text(text)
        exc = None
        t0 = time.perf_counter()
        try:
            with deadline(ABC_DEADLINE_S):
                result = read_tracks(target)
            assert result.tracks
        except (Exception, CaseTimeout) as e:  # noqa: BLE001 - classified below
            exc = e
        slowest = max(slowest, time.perf_counter() - t0)
        kind = _classify(exc)
        outcomes[kind] += 1
        if kind.startswith(("CRASH", "HANG")):
            crashes.append((f"{kind}: {exc}", text))
    capfd.readouterr()  # music21's parser warnings
    print(f"\nABC fuzz: {ABC_CASES} cases, slowest {slowest:.2f} s: {dict(outcomes)}")
    assert not crashes, crashes[:3]
    assert outcomes["parsed"] > 0


@settings(
    max_examples=300,
    deadline=2000,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.sampled_from(range(9)), edits=st.lists(
    st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=8)), max_size=6),
    cut=st.none() | st.integers(0, 10_000))  # fmt: skip
def test_hypothesis_midi_edits(scratch, seed, edits, cut):
    """Shrinkable property test: splice arbitrary bytes into a fixture, maybe truncate."""
    seeds = _midi_seeds()
    b = bytearray(seeds[seed % len(seeds)])
    for pos, blob in edits:
        i = pos % (len(b) + 1)
        b[i : i + len(blob)] = blob
    if cut is not None:
        del b[cut % (len(b) + 1) :]
    target = scratch / "h.mid"
    target.write_bytes(bytes(b))
    try:
        with deadline(MIDI_DEADLINE_S):
            read_midi(target)
    except RltunerError:
        pass


def test_abc_cases_found_by_fuzzing(scratch):
    """Regressions: an unreadable meter took music21 13-50 s, a 612-unit note over 10 s."""
    pytest.importorskip("music21")
    from rltuner.corpus import read_tracks

    tune = _abc_tunes()[0]
    bad_meter = scratch / "meter.abc"
    bad_meter.write_text(tune.replace("M:4/4", "M:4/C34").replace("c2A2 A2BA", "c27 dBBA2"))
    with deadline(5.0):
        assert read_tracks(bad_meter).tracks
    long_note = scratch / "long.abc"
    long_note.write_text(tune.replace("G4 |]", "G612 |]"))
    with deadline(5.0), pytest.raises(RltunerError, match="note length 612 units is too long"):
        read_tracks(long_note)

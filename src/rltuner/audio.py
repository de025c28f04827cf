"""Listen to melodies: render a melody or a MIDI file to a WAV file.

Two synthesisers:

* ``fluidsynth`` -- FluidSynth with a General MIDI soundfont, through pretty_midi (needs the
  Python package ``pyfluidsynth`` and the system library, e.g. Debian
  ``apt-get install fluidsynth fluid-soundfont-gm``). Soundfont search order: the
  ``soundfont`` argument, ``$RLTUNER_SOUNDFONT``, ``/usr/share/sounds/sf2/FluidR3_GM.sf2``
  (and the other usual system paths), then the small ``TimGM6mb.sf2`` shipped with pretty_midi.
* ``builtin`` -- a numpy additive synthesiser (six decaying harmonics per note under an
  attack/release envelope, a plucked-string colour) that needs no system package, so
  listening always works.

``synth="auto"`` uses FluidSynth when it is usable, else the built-in one. WAV files are 16-bit
PCM mono written with the standard library's :mod:`wave`, atomically.
"""

from __future__ import annotations

import contextlib
import io
import os
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rltuner.checkpoint import atomic_path
from rltuner.encoding import DEFAULT_QPM
from rltuner.errors import RltunerError

if TYPE_CHECKING:
    import pretty_midi

    from rltuner.harmony import ChordSpan

__all__ = [
    "SYNTHS",
    "find_soundfont",
    "fluidsynth_available",
    "synthesize",
    "builtin_synth",
    "wav_bytes",
    "write_wav",
    "render_wav",
]

SYNTHS = ("auto", "fluidsynth", "builtin")
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
DEFAULT_SAMPLE_RATE = 22050
TAIL_SECONDS = 0.6  # silence after the last note so its release is heard


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path | None:
    """The first existing soundfont of: ``soundfont``, ``$RLTUNER_SOUNDFONT``, the system
    paths, pretty_midi's bundled ``TimGM6mb.sf2``. ``None`` if there is none."""
    candidates: list[str | os.PathLike] = []
    if soundfont:
        p = Path(soundfont)
        if not p.exists():
            raise RltunerError(f"{p}: no such soundfont file")
        return p
    if os.environ.get("RLTUNER_SOUNDFONT"):
        candidates.append(os.environ["RLTUNER_SOUNDFONT"])
    candidates.extend(SYSTEM_SOUNDFONTS)
    with contextlib.suppress(ImportError):
        import pretty_midi

        candidates.append(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2")
    for c in candidates:
        if Path(c).is_file():
            return Path(c)
    return None


def fluidsynth_available() -> bool:
    """True when pyfluidsynth imports (it loads the system ``libfluidsynth``) and a soundfont
    is found."""
    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError):
        return False
    return find_soundfont() is not None


def _to_pretty_midi(
    source,
    qpm: float,
    program: int,
    chords: Sequence[ChordSpan] | None = None,
    chord_style: str = "block",
) -> pretty_midi.PrettyMIDI:
    import pretty_midi

    if isinstance(source, (pretty_midi.PrettyMIDI, str, os.PathLike)) and chords is not None:
        raise RltunerError("chords go with a melody (an array of classes), not a MIDI file")
    if isinstance(source, pretty_midi.PrettyMIDI):
        return source
    if isinstance(source, (str, os.PathLike)):
        from rltuner.midi_io import load_pretty_midi

        return load_pretty_midi(source)
    from rltuner.midi_io import melody_to_pretty_midi

    melody = np.asarray(source, dtype=np.int64)
    return melody_to_pretty_midi(melody, qpm=qpm, program=program, chords=chords,
                                 chord_style=chord_style)  # fmt: skip


def builtin_synth(pm: pretty_midi.PrettyMIDI, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Additive synthesis of every non-drum note of ``pm``: float32 mono in [-1, 1] (peak
    0.9), lasting until the last note's end plus :data:`TAIL_SECONDS`.

    Per note: harmonics ``k = 1..6`` with amplitude ``k^-1.5`` decaying at ``1.5·k`` per
    second (brighter attack, mellow sustain), a 5 ms linear attack and a 80 ms exponential
    release after the note's end; amplitude ``(velocity / 127)^2`` (the General MIDI velocity
    curve, 40·log10(v/127) dB), so a softer track -- the chords -- lies under the melody.
    Every track is mixed in; the mix is scaled to the peak, so the result never clips."""
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    end = max((n.end for n in notes), default=0.0)
    out = np.zeros(int(np.ceil((end + TAIL_SECONDS) * sample_rate)) + 1, dtype=np.float64)
    release = 0.08
    k = np.arange(1, 7, dtype=np.float64)[:, None]
    for n in notes:
        start = int(round(n.start * sample_rate))
        dur = max(n.end - n.start, 1.0 / sample_rate)
        length = min(int(np.ceil((dur + 5 * release) * sample_rate)), out.size - start)
        if length <= 0:
            continue
        t = np.arange(length) / sample_rate
        f0 = 440.0 * 2.0 ** ((n.pitch - 69) / 12.0)
        partials = (k**-1.5) * np.exp(-1.5 * k * t) * np.sin(2 * np.pi * f0 * k * t)
        partials[k[:, 0] * f0 >= sample_rate / 2] = 0.0  # no aliasing above Nyquist
        env = np.minimum(t / 0.005, 1.0) * np.where(t < dur, 1.0, np.exp(-(t - dur) / release))
        gain = (n.velocity / 127.0) ** 2
        out[start : start + length] += gain * env * partials.sum(axis=0)
    peak = float(np.abs(out).max())
    if peak > 0:
        out *= 0.9 / peak
    return out.astype(np.float32)


def _fluidsynth(pm: pretty_midi.PrettyMIDI, sample_rate: int, soundfont: Path) -> np.ndarray:
    import inspect

    # pretty_midi >= 0.2.11 takes the soundfont as `synthesizer` (`sf2_path` is deprecated)
    params = inspect.signature(pm.fluidsynth).parameters
    kw = {"synthesizer" if "synthesizer" in params else "sf2_path": str(soundfont)}
    audio = np.asarray(pm.fluidsynth(fs=sample_rate, **kw), dtype=np.float64)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0:
        audio *= 0.9 / peak
    return audio.astype(np.float32)


def synthesize(
    source,
    synth: str = "auto",
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    qpm: float = DEFAULT_QPM,
    program: int = 0,
    soundfont: str | os.PathLike | None = None,
    chords: Sequence[ChordSpan] | None = None,
    chord_style: str = "block",
) -> tuple[np.ndarray, str]:
    """Render ``source`` (a melody ``(T,)`` of classes, a ``PrettyMIDI`` or a MIDI file path)
    to float32 mono audio with peak 0.9 (every track of a MIDI file is played). Returns
    ``(audio, synth used)``. ``qpm``/``program`` apply to a melody only, and so do ``chords``
    (spans of the composition, played under the melody on a second, softer track; see
    :func:`rltuner.midi_io.melody_to_pretty_midi`) and ``chord_style`` (``block`` or
    ``arpeggio``). Raises :class:`RltunerError` if ``synth="fluidsynth"`` is not usable."""
    if synth not in SYNTHS:
        raise RltunerError(f"unknown synth {synth!r}; choose from {', '.join(SYNTHS)}")
    pm = _to_pretty_midi(source, qpm, program, chords, chord_style)
    if synth in ("auto", "fluidsynth"):
        sf = find_soundfont(soundfont)
        if fluidsynth_available() and sf is not None:
            return _fluidsynth(pm, sample_rate, sf), "fluidsynth"
        if synth == "fluidsynth":
            raise RltunerError(
                "FluidSynth is not usable: install the Python package pyfluidsynth and the "
                "system packages (Debian: apt-get install fluidsynth fluid-soundfont-gm), or "
                "use --synth builtin"
            )
    return builtin_synth(pm, sample_rate), "builtin"


def _pcm16(audio: np.ndarray) -> bytes:
    a = np.clip(np.asarray(audio, dtype=np.float64).reshape(-1), -1.0, 1.0)
    return (a * 32767.0).round().astype("<i2").tobytes()


def _write_wave(f, audio: np.ndarray, sample_rate: int) -> None:
    with wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(_pcm16(audio))


def wav_bytes(audio: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE) -> bytes:
    """A complete 16-bit mono WAV file of ``audio`` (float, clipped to [-1, 1]) in memory."""
    buf = io.BytesIO()
    _write_wave(buf, audio, sample_rate)
    return buf.getvalue()


def write_wav(
    audio: np.ndarray, path: str | os.PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> Path:
    """Write ``audio`` as a 16-bit mono WAV file, atomically. Returns the path."""
    path = Path(path)
    with atomic_path(path, suffix=".wav") as tmp:
        _write_wave(str(tmp), audio, sample_rate)
    return path


def render_wav(
    source,
    path: str | os.PathLike,
    synth: str = "auto",
    sample_rate: int | None = None,
    qpm: float = DEFAULT_QPM,
    program: int = 0,
    soundfont: str | os.PathLike | None = None,
    chords: Sequence[ChordSpan] | None = None,
    chord_style: str = "block",
) -> tuple[Path, str]:
    """Render a melody (with ``chords`` under it when given), ``PrettyMIDI`` or MIDI file to
    the WAV file ``path`` (see :func:`synthesize`; default rate 44.1 kHz with FluidSynth,
    22.05 kHz built-in). Returns ``(path, synth used)``."""
    rate = sample_rate or (44100 if synth == "fluidsynth" else DEFAULT_SAMPLE_RATE)
    audio, used = synthesize(source, synth, rate, qpm, program, soundfont, chords, chord_style)
    return write_wav(audio, path, rate), used

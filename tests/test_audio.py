"""Audio rendering (rltuner.audio): built-in synthesiser, FluidSynth when installed, WAV files
and `rltuner render`."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from rltuner import audio
from rltuner.audio import fluidsynth_available, render_wav, synthesize, wav_bytes
from rltuner.cli import main
from rltuner.errors import RltunerError
from rltuner.harmony import Chord, ChordSpan
from rltuner.midi_io import load_pretty_midi, write_midi

# C4 for a quarter (4 steps), a quarter rest, E4 for a half note: 80 QPM, 16th = 0.1875 s
MELODY = np.array([14, 1, 1, 1, 0, 1, 1, 1, 18, 1, 1, 1, 1, 1, 1, 1])
STEP = 60.0 / 80.0 / 4


def _read(path_or_bytes):
    f = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with wave.open(f) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    return x / 32767.0, rate


def _rms(x, rate, t0, t1):
    seg = x[int(t0 * rate) : int(t1 * rate)]
    return float(np.sqrt(np.mean(seg**2)))


def test_builtin_synth_writes_audible_wav_with_silent_rest(tmp_path):
    path, used = render_wav(MELODY, tmp_path / "m.wav", synth="builtin")
    assert used == "builtin" and path.exists()
    x, rate = _read(path)
    assert rate == 22050
    assert len(x) / rate == pytest.approx(16 * STEP + audio.TAIL_SECONDS, abs=0.05)
    assert 0.5 < np.abs(x).max() <= 0.91
    note = _rms(x, rate, 0.05, 4 * STEP)
    rest = _rms(x, rate, 4 * STEP + 0.5, 8 * STEP)  # after the 80 ms release has died away
    assert note > 0.05 and rest < note / 50


def test_builtin_pitch_is_right(tmp_path):
    a4 = np.array([25] + [1] * 15)  # class 25 = MIDI 71 (B4, 493.9 Hz)
    x, rate = synthesize(a4, synth="builtin", sample_rate=22050)[0], 22050
    seg = x[int(0.1 * rate) : int(0.6 * rate)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    f = np.fft.rfftfreq(seg.size, 1 / rate)[spec.argmax()]
    assert f == pytest.approx(493.88, rel=0.01)


def test_render_from_midi_file_and_wav_bytes(tmp_path):
    mid = write_midi(MELODY, tmp_path / "m.mid")
    path, used = render_wav(mid, tmp_path / "m.wav", synth="builtin")
    x, _ = _read(path)
    assert np.abs(x).max() > 0.5
    data = wav_bytes(np.zeros(100, dtype=np.float32), 8000)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    silence, rate = _read(data)
    assert rate == 8000 and silence.size == 100 and not silence.any()


def test_empty_melody_gives_short_silence(tmp_path):
    path, _ = render_wav(np.array([0, 1, 1, 1]), tmp_path / "e.wav", synth="builtin")
    x, rate = _read(path)
    assert not x.any() and len(x) / rate < 1.0


def test_unknown_or_unavailable_synth(monkeypatch):
    with pytest.raises(RltunerError, match="unknown synth"):
        synthesize(MELODY, synth="moog")
    monkeypatch.setattr(audio, "fluidsynth_available", lambda: False)
    with pytest.raises(RltunerError, match="apt-get install fluidsynth"):
        synthesize(MELODY, synth="fluidsynth")
    assert synthesize(MELODY, synth="auto")[1] == "builtin"  # auto falls back


@pytest.mark.skipif(not fluidsynth_available(), reason="FluidSynth (pyfluidsynth + libfluidsynth"
                    " + a soundfont) not installed")  # fmt: skip
def test_fluidsynth(tmp_path):
    path, used = render_wav(MELODY, tmp_path / "f.wav", synth="fluidsynth")
    assert used == "fluidsynth"
    x, rate = _read(path)
    assert rate == 44100 and np.abs(x).max() > 0.5
    assert _rms(x, rate, 0.05, 4 * STEP) > 0.01


def test_cli_render_folder(tmp_path, capsys):
    src = tmp_path / "midi"
    write_midi(MELODY, src / "a.mid")
    write_midi(MELODY[::-1].copy(), src / "sub" / "b.mid")
    assert main(["render", str(src), "--out", str(tmp_path / "wav"), "--synth", "builtin"]) == 0
    assert sorted(p.name for p in (tmp_path / "wav").glob("*.wav")) == ["a.wav", "b.wav"]
    assert main(["render", str(src / "a.mid"), "--synth", "builtin"]) == 0
    assert (src / "a.wav").exists()  # default: next to the MIDI file
    assert main(["render", str(tmp_path / "none")]) == 2
    assert "no such MIDI file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- chords under it

# the melody plays only C4 and E4 (MIDI 60, 64); under it an A minor chord: bass A2 (110 Hz),
# then C3 E3 A3 (MIDI 48, 52, 57); A is a pitch class the melody lacks
AM = Chord("Am", 9, (9, 0, 4), 9)
AM_SPANS = [ChordSpan(AM, 0, 16)]


def _spectrum(x, rate, t0, t1):
    seg = x[int(t0 * rate) : int(t1 * rate)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1 / rate)
    return lambda f: float(spec[np.abs(freqs - f) < 0.03 * f].max())


def test_builtin_melody_with_chords_plays_both_melody_on_top(tmp_path):
    alone, _ = synthesize(MELODY, synth="builtin")
    both, used = synthesize(MELODY, synth="builtin", chords=AM_SPANS)
    assert used == "builtin" and both.shape == alone.shape
    assert not np.allclose(both, alone, atol=1e-3)
    assert 0.5 < np.abs(both).max() <= 1.0  # no clipping
    rate = 22050
    a, b = _spectrum(alone, rate, 0.02, 0.7), _spectrum(both, rate, 0.02, 0.7)
    for f in (110.0, 220.0):  # A2 (bass) and A3: chord tones the melody lacks
        assert b(f) > 20 * a(f), f
    # the melody's C4 stays louder than any chord tone's fundamental
    assert b(261.63) > 2 * max(b(f) for f in (110.0, 130.81, 164.81, 220.0))
    # the chord sounds in the melody's rest too (steps 4..7), softly
    path, _ = render_wav(MELODY, tmp_path / "mc.wav", synth="builtin", chords=AM_SPANS)
    x, rate = _read(path)
    assert _rms(x, rate, 4 * STEP + 0.3, 8 * STEP) > 0.005
    assert np.abs(x).max() <= 1.0


def test_two_track_midi_file_renders_both_tracks(tmp_path):
    mid = write_midi(MELODY, tmp_path / "two.mid", chords=AM_SPANS, chord_style="arpeggio")
    assert len(load_pretty_midi(mid).instruments) == 2
    from_file, _ = synthesize(mid, synth="builtin")
    from_melody, _ = synthesize(MELODY, synth="builtin", chords=AM_SPANS, chord_style="arpeggio")
    alone, _ = synthesize(MELODY, synth="builtin")
    assert np.allclose(from_file, from_melody, atol=1e-3)
    assert _spectrum(from_file, 22050, 0.02, 0.7)(110.0) > 20 * _spectrum(alone, 22050, 0.02,
                                                                          0.7)(110.0)  # fmt: skip
    with pytest.raises(RltunerError, match="chords go with a melody"):
        synthesize(mid, synth="builtin", chords=AM_SPANS)


def test_fluidsynth_path_gets_both_tracks(monkeypatch, tmp_path):
    """pyfluidsynth is not installed everywhere: check what reaches it, and the mix after it."""
    import pretty_midi

    seen = {}

    def fake(self, fs=None, synthesizer=None, **kw):
        seen["programs"] = [(i.name, i.program, len(i.notes)) for i in self.instruments]
        seen["velocities"] = [{n.velocity for n in i.notes} for i in self.instruments]
        return np.linspace(-3.0, 2.0, fs)  # unnormalised, as with normalize=False

    sf = tmp_path / "x.sf2"
    sf.write_bytes(b"RIFF")
    monkeypatch.setattr(audio, "fluidsynth_available", lambda: True)
    monkeypatch.setattr(pretty_midi.PrettyMIDI, "fluidsynth", fake)
    x, used = synthesize(MELODY, synth="fluidsynth", sample_rate=1000, soundfont=sf,
                         chords=AM_SPANS)  # fmt: skip
    assert used == "fluidsynth"
    assert seen["programs"] == [("melody", 0, 2), ("chords", 4, 4)]
    assert seen["velocities"][1] == {56} and min(seen["velocities"][0]) > 56
    assert np.abs(x).max() == pytest.approx(0.9, abs=1e-6)


def test_cli_render_two_track_file(tmp_path):
    mid = write_midi(MELODY, tmp_path / "two.mid", chords=AM_SPANS)
    one = write_midi(MELODY, tmp_path / "one.mid")
    assert main(["render", str(tmp_path), "--synth", "builtin"]) == 0
    two_x, rate = _read(tmp_path / "two.wav")
    one_x, _ = _read(tmp_path / "one.wav")
    assert mid.exists() and one.exists()
    assert _spectrum(two_x, rate, 0.02, 0.7)(110.0) > 20 * _spectrum(one_x, rate, 0.02,
                                                                      0.7)(110.0)  # fmt: skip

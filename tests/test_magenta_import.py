"""Importing Magenta / RL Tuner TensorFlow models (fixtures made by TensorFlow itself, see
tests/fixtures/magenta/README.md): TensorFlow's next-step probabilities are reproduced, every
conversion fact is checked on its own, and everything else is refused with one clear line."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rltuner.encoding import FIRST_NOTE_CLASS, MIN_PITCH, NO_EVENT, NOTE_OFF, NUM_CLASSES
from rltuner.env import load_network, log_softmax
from rltuner.errors import RltunerError
from rltuner.magenta_import import MAGENTA_CLASS_OF, convert_lstm, import_note_rnn
from rltuner.tf_checkpoint import crc32c, open_checkpoint, read_bundle

FIX = Path(__file__).parent / "fixtures" / "magenta"

V1, V2, MAG = "tensorflow-v1", "tensorflow-v2", "magenta-bundle"
# source to import -> (TensorFlow's probabilities, LSTM sizes, format, configuration id)
CASES = {
    "basic_kernel/note_rnn.ckpt": ("basic_kernel/note_rnn.ckpt.probs.npz", (12,), V2, None),
    "lstm_cell_2layer/model.ckpt.index": ("lstm_cell_2layer/model.ckpt.probs.npz", (10, 8), V2, None),  # noqa: E501
    "weights_biases": ("weights_biases/model.ckpt.probs.npz", (9,), V2, None),
    "v1_tf0_names/note_rnn.ckpt": ("v1_tf0_names/note_rnn.ckpt.probs.npz", (11,), V1, None),
    "melody_rnn_run": ("melody_rnn_run/train/probs.npz", (12, 12), V2, None),
    "basic_rnn.mag": ("basic_rnn.mag.probs.npz", (16, 16), MAG, "basic_rnn"),
}  # fmt: skip


def _rltuner_class(magenta_class: np.ndarray) -> np.ndarray:
    """Magenta class -> rltuner class (the inverse of MAGENTA_CLASS_OF)."""
    return np.argsort(MAGENTA_CLASS_OF)[magenta_class]


def _probs(model_path: Path, seqs: np.ndarray) -> np.ndarray:
    """Next-step probabilities ``(N, T, 38)`` of an rltuner Note RNN over rltuner classes."""
    net, _ = load_network(model_path)
    state = net.zero_state(len(seqs))
    out = []
    for t in range(seqs.shape[1]):
        logits, state = net.step(seqs[:, t], state)
        out.append(np.exp(log_softmax(logits)))
    return np.stack(out, axis=1)


@pytest.mark.parametrize("source", sorted(CASES))
def test_imported_model_reproduces_tensorflow(source, tmp_path):
    probs_file, sizes, fmt, config_id = CASES[source]
    out = tmp_path / "imported.safetensors"
    res = import_note_rnn(FIX / source, out)
    assert res.layer_sizes == sizes  # read from the tensors
    z = np.load(FIX / probs_file)
    tf_probs, magenta_seqs = z["probs"], z["sequences"]
    ours = _probs(out, _rltuner_class(magenta_seqs))
    # TensorFlow's probability of Magenta class m is ours of rltuner class MAGENTA_CLASS_OF^-1[m]
    np.testing.assert_allclose(
        ours[:, :, _rltuner_class(np.arange(NUM_CLASSES))], tf_probs, atol=1e-5
    )
    meta = json.loads(__import__("safetensors").safe_open(str(out), "numpy").metadata()["rltuner"])
    src = meta["source"]
    assert src["path"] == str((FIX / source).resolve())
    assert src["format"] == fmt and src["configuration"] == config_id
    assert meta["config"]["layer_sizes"] == list(sizes)
    names = json.loads((FIX / "names.json").read_text())
    assert len(src["variables"]) == len(sizes) + 1
    all_names = set().union(*(n for n in names.values()))
    for v in src["variables"].values():
        for tf_name in v.values():
            assert tf_name in all_names or fmt == "magenta-bundle"


def test_torch_loader_accepts_an_imported_model(tmp_path):
    torch = pytest.importorskip("torch")
    from rltuner.note_rnn import load_note_rnn

    out = tmp_path / "m.safetensors"
    import_note_rnn(FIX / "basic_rnn.mag", out)
    model, meta = load_note_rnn(out)
    z = np.load(FIX / "basic_rnn.mag.probs.npz")
    x = torch.from_numpy(_rltuner_class(z["sequences"]))
    with torch.no_grad():
        p = torch.softmax(model(x)[0], -1).numpy()
    np.testing.assert_allclose(p[:, :, _rltuner_class(np.arange(38))], z["probs"], atol=1e-5)
    assert meta["source"]["configuration"] == "basic_rnn"


# ---------------------------------------------------------------------- the facts, one by one
def _tf_cell(x, h, c, kernel, bias, forget_bias=1.0):
    """TensorFlow's BasicLSTMCell step (numpy): gates i, j, f, o of concat([x, h]) @ kernel."""
    z = np.concatenate([x, h], axis=1) @ kernel + bias
    i, j, f, o = np.split(z, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c2 = c * sig(f + forget_bias) + sig(i) * np.tanh(j)
    return np.tanh(c2) * sig(o), c2


def _torch_order_cell(x, h, c, w_ih, w_hh, b):
    """rltuner's step (PyTorch gate order i, f, g, o)."""
    z = x @ w_ih.T + h @ w_hh.T + b
    i, f, g, o = np.split(z, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c2 = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c2), c2


def test_convert_lstm_kernel_layout_gate_order_and_forget_bias():
    rng = np.random.default_rng(0)
    n_in, hid = 5, 3
    kernel = rng.normal(size=(n_in + hid, 4 * hid)).astype(np.float32)  # [input + hidden, 4H]
    bias = rng.normal(size=4 * hid).astype(np.float32)
    x, h, c = (rng.normal(size=(4, n)) for n in (n_in, hid, hid))
    w_ih, w_hh, b = convert_lstm(kernel, bias, forget_bias=1.0)
    assert w_ih.shape == (4 * hid, n_in) and w_hh.shape == (4 * hid, hid)
    np.testing.assert_allclose(
        _torch_order_cell(x, h, c, w_ih, w_hh, b), _tf_cell(x, h, c, kernel, bias), rtol=1e-5
    )
    # gate order: TF's j block (2nd) becomes PyTorch's g block (3rd), f (3rd) becomes 2nd
    np.testing.assert_array_equal(w_ih[2 * hid : 3 * hid], kernel[:n_in, hid : 2 * hid].T)
    np.testing.assert_array_equal(w_hh[hid : 2 * hid], kernel[n_in:, 2 * hid : 3 * hid].T)
    # the forget bias is added (it is not in the checkpoint) and nowhere else
    np.testing.assert_allclose(b[hid : 2 * hid], bias[2 * hid : 3 * hid] + 1.0)
    np.testing.assert_array_equal(b[:hid], bias[:hid])
    # without it the step differs from TensorFlow's
    w_ih0, w_hh0, b0 = convert_lstm(kernel, bias, forget_bias=0.0)
    assert not np.allclose(
        _torch_order_cell(x, h, c, w_ih0, w_hh0, b0)[1], _tf_cell(x, h, c, kernel, bias)[1]
    )


def test_stored_bias_lacks_the_forget_bias(tmp_path):
    """The checkpoint's forget-gate bias + 1.0 = the imported one (TF adds 1.0 at run time)."""
    ckpt = open_checkpoint(FIX / "basic_kernel" / "note_rnn.ckpt")
    stored = ckpt.read("rnn_model/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias")
    out = tmp_path / "m.safetensors"
    import_note_rnn(FIX / "basic_kernel" / "note_rnn.ckpt", out, forget_bias=1.0)
    from rltuner.checkpoint import load_arrays

    arrays, _ = load_arrays(out)
    hid = 12
    np.testing.assert_allclose(
        arrays["lstms.0.bias_ih_l0"][hid : 2 * hid], stored[2 * hid : 3 * hid] + 1.0
    )


def test_class_permutation_matches_both_encodings():
    # Magenta: 0 = no event (hold), 1 = note-off; rltuner the reverse; k >= 2 is MIDI k + 46 in both
    assert MAGENTA_CLASS_OF[NOTE_OFF] == 1 and MAGENTA_CLASS_OF[NO_EVENT] == 0
    pitches = np.arange(FIRST_NOTE_CLASS, NUM_CLASSES)
    np.testing.assert_array_equal(MAGENTA_CLASS_OF[pitches], pitches)
    assert MIN_PITCH - FIRST_NOTE_CLASS == 46
    assert sorted(MAGENTA_CLASS_OF) == list(range(NUM_CLASSES))


def test_input_columns_and_output_rows_are_permuted(tmp_path):
    ckpt = open_checkpoint(FIX / "basic_kernel" / "note_rnn.ckpt")
    kernel = ckpt.read("rnn_model/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel")
    w_fc = ckpt.read("rnn_model/fully_connected/weights")
    out = tmp_path / "m.safetensors"
    import_note_rnn(FIX / "basic_kernel" / "note_rnn.ckpt", out)
    from rltuner.checkpoint import load_arrays

    a, _ = load_arrays(out)
    # rltuner's note-off input column = Magenta's input row 1 (note-off); input gate block
    np.testing.assert_array_equal(a["lstms.0.weight_ih_l0"][:12, NOTE_OFF], kernel[1, :12])
    np.testing.assert_array_equal(a["lstms.0.weight_ih_l0"][:12, NO_EVENT], kernel[0, :12])
    np.testing.assert_array_equal(a["lstms.0.weight_ih_l0"][:12, 20], kernel[20, :12])
    np.testing.assert_array_equal(a["output.weight"][NOTE_OFF], w_fc[:, 1])
    np.testing.assert_array_equal(a["output.weight"][NO_EVENT], w_fc[:, 0])
    np.testing.assert_array_equal(a["output.weight"][37], w_fc[:, 37])


# ---------------------------------------------------------------------- finding the checkpoint
def test_folder_picks_the_latest_checkpoint(tmp_path):
    res = import_note_rnn(FIX / "melody_rnn_run", tmp_path / "a.safetensors")
    assert res.source["checkpoint"].endswith("model.ckpt-3")  # the state file's, not ckpt-2
    # a folder whose state file points at ckpt-2 (recorded on another machine) takes ckpt-2
    train = shutil.copytree(FIX / "melody_rnn_run" / "train", tmp_path / "train")
    (train / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/train/model.ckpt-2"\n')
    res = import_note_rnn(train, tmp_path / "b.safetensors")
    assert res.source["checkpoint"].endswith("model.ckpt-2")
    # no state file: the highest step
    (train / "checkpoint").unlink()
    res = import_note_rnn(train, tmp_path / "c.safetensors")
    assert res.source["checkpoint"].endswith("model.ckpt-3")


def test_scope_chooses_one_of_several_models(tmp_path):
    with pytest.raises(RltunerError, match="2 LSTM models.*--scope"):
        import_note_rnn(FIX / "two_models" / "model.ckpt", tmp_path / "m.safetensors")
    res = import_note_rnn(
        FIX / "two_models" / "model.ckpt", tmp_path / "m.safetensors", scope="target_q_network/"
    )
    assert res.layer_sizes == (8,)
    assert res.source["variables"]["output"]["weights"].startswith("target_q_network/")


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


# ---------------------------------------------------------------------- refusals
def _bundle(*fields: tuple[int, bytes]) -> bytes:
    def varint(n):
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    return b"".join(varint(k << 3 | 2) + varint(len(v)) + v for k, v in fields)


def _refusals(tmp: Path) -> list[tuple[Path, str]]:
    ckpt_bytes = read_bundle(FIX / "basic_rnn.mag").checkpoint_files[0]
    details = _bundle((1, b"basic_rnn"))
    (tmp / "two.mag").write_bytes(_bundle((1, details), (2, ckpt_bytes), (2, ckpt_bytes)))
    (tmp / "empty.mag").write_bytes(b"")
    (tmp / "random.bin").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp / "model.ckpt.meta").write_bytes(b"\x0a\x05hello")
    # a V2 index whose data file is missing
    shutil.copy(FIX / "weights_biases" / "model.ckpt.index", tmp / "nodata.index")
    # a V1 checkpoint whose block is flagged snappy-compressed (with a valid checksum)
    v1 = bytearray((FIX / "v1_tf0_names" / "note_rnn.ckpt").read_bytes())
    idx_off = _first_block_size(v1)
    v1[idx_off] = 1
    masked = _mask(crc32c(bytes(v1[: idx_off + 1])))
    v1[idx_off + 1 : idx_off + 5] = struct.pack("<I", masked)
    (tmp / "snappy.ckpt").write_bytes(bytes(v1))
    # a V2 data file with one flipped bit (the entry's CRC-32C catches it)
    data = bytearray((FIX / "weights_biases" / "model.ckpt.data-00000-of-00001").read_bytes())
    data[100] ^= 4
    shutil.copy(FIX / "weights_biases" / "model.ckpt.index", tmp / "flipped.index")
    (tmp / "flipped.data-00000-of-00001").write_bytes(bytes(data))
    # a V2 data file cut short (offsets past its end)
    shutil.copy(FIX / "weights_biases" / "model.ckpt.index", tmp / "short.index")
    (tmp / "short.data-00000-of-00001").write_bytes(bytes(data[:200]))
    empty_dir = tmp / "empty_folder"
    empty_dir.mkdir()
    return [
        (FIX / "lookback_rnn.mag", "generator 'lookback_rnn'"),
        (FIX / "no_lstm" / "model.ckpt", "no LSTM found"),
        (FIX / "wide_input" / "model.ckpt", "inputs of size 74"),
        (FIX / "two_models" / "model.ckpt", "--scope"),
        (tmp / "two.mag", "2 checkpoint files"),
        (tmp / "empty.mag", "empty file"),
        (tmp / "random.bin", "not a TensorFlow checkpoint"),
        (tmp / "model.ckpt.meta", "metagraph"),
        (tmp / "nodata.index", "nodata.data-00000-of-00001"),
        (tmp / "snappy.ckpt", "snappy"),
        (tmp / "flipped.index", "checksum mismatch in flipped.data-00000-of-00001"),
        (tmp / "short.index", "lie outside short.data-00000-of-00001"),
        (tmp / "missing.ckpt", "no such file"),
        (empty_dir, "folder without a TensorFlow checkpoint"),
        (Path("/dev/zero"), "not a regular file"),
    ]


def _first_block_size(table: bytearray) -> int:
    """Size of the first data block of a table (its handle is the index block's first value)."""
    footer = table[-48:]
    pos = 0

    def varint(buf, pos):
        r = s = 0
        while True:
            b = buf[pos]
            pos += 1
            r |= (b & 0x7F) << s
            s += 7
            if not b & 0x80:
                return r, pos

    _, pos = varint(footer, pos)
    _, pos = varint(footer, pos)
    index_off, pos = varint(footer, pos)
    # first entry of the index block: shared, non_shared, value_size, key, value(handle)
    p = index_off
    _, p = varint(table, p)
    non_shared, p = varint(table, p)
    _, p = varint(table, p)
    p += non_shared
    off, p = varint(table, p)
    size, p = varint(table, p)
    return off + size


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def test_refusals_are_one_clear_line(tmp_path):
    for path, needle in _refusals(tmp_path):
        with pytest.raises(RltunerError) as e:
            import_note_rnn(path, tmp_path / "out.safetensors")
        msg = str(e.value)
        assert needle in msg, (path, msg)
        assert str(path) in msg or path.name in msg, msg
        assert "\n" not in msg
        assert not (tmp_path / "out.safetensors").exists()


def test_fuzz_only_clean_errors(tmp_path):
    """2,000 truncated, bit-flipped (some re-checksummed, so the parser reads the damage) and
    random files: each imports or raises RltunerError (one line)."""
    rng = np.random.default_rng(2024)
    sources = {
        "v1": (FIX / "v1_tf0_names" / "note_rnn.ckpt").read_bytes(),
        "mag": (FIX / "lookback_rnn.mag").read_bytes(),
        "index": (FIX / "weights_biases" / "model.ckpt.index").read_bytes(),
    }
    data_file = (FIX / "weights_biases" / "model.ckpt.data-00000-of-00001").read_bytes()
    outcomes = {"ok": 0, "refused": 0}
    for n in range(2000):
        kind = ("v1", "mag", "index")[n % 3]
        raw = bytearray(sources[kind])
        how = rng.integers(4)
        if how == 3 and kind != "mag":  # bit flips behind a valid checksum: the parser sees them
            end = _first_block_size(raw)
            for _ in range(rng.integers(1, 4)):
                i = rng.integers(end)
                raw[i] ^= 1 << int(rng.integers(8))
            raw[end + 1 : end + 5] = struct.pack("<I", _mask(crc32c(bytes(raw[: end + 1]))))
        elif how == 0:
            raw = raw[: rng.integers(len(raw))]
        elif how in (1, 3):
            for _ in range(rng.integers(1, 4)):
                i = rng.integers(len(raw))
                raw[i] ^= 1 << int(rng.integers(8))
        else:
            raw = bytearray(rng.bytes(int(rng.integers(0, 400))))
            if rng.random() < 0.5 and len(raw) >= 8:  # random bytes behind a valid footer magic
                raw[-8:] = sources["v1"][-8:]
        if kind == "index":
            name = tmp_path / "f.ckpt.index"
            (tmp_path / "f.ckpt.data-00000-of-00001").write_bytes(data_file)
        else:
            name = tmp_path / ("f.mag" if kind == "mag" else "f.ckpt")
        name.write_bytes(bytes(raw))
        try:
            import_note_rnn(name, tmp_path / "out.safetensors")
            outcomes["ok"] += 1
        except RltunerError as e:
            assert "\n" not in str(e)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 1000, outcomes


# ---------------------------------------------------------------------- command line
def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rltuner.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_cli_import_then_tune_and_generate(tmp_path):
    model = tmp_path / "imported.safetensors"
    p = _run("note-rnn", "import", str(FIX / "basic_rnn.mag"), "--out", str(model))
    assert p.returncode == 0, p.stderr
    assert "basic_rnn" in p.stdout and model.exists()
    run_dir = tmp_path / "run"
    p = _run(
        "tune", "--note-rnn", str(model), "--steps", "1024", "--eval-every", "1024",
        "--memory-size", "2000", "--final-compositions", "16", "--num-samples", "1",
        "--no-report", "--out", str(run_dir), "--quiet",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert (run_dir / "stats.json").exists()
    g = _run(
        "generate",
        "--model",
        str(model),
        "-n",
        "2",
        "--length",
        "16",
        "--out",
        str(tmp_path / "gen"),
    )
    assert g.returncode == 0, g.stderr
    assert len(list((tmp_path / "gen").glob("*.mid"))) == 2


def test_cli_refusal_is_one_line(tmp_path):
    p = _run("note-rnn", "import", str(FIX / "lookback_rnn.mag"), "--out", str(tmp_path / "x"))
    assert p.returncode == 2
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "lookback_rnn" in lines[0] and "Traceback" not in p.stderr


def test_import_needs_neither_torch_nor_tensorflow(tmp_path):
    blocker = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'tensorflow'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, B())\n"
        "from rltuner.cli import main\n"
        f"code = main(['note-rnn', 'import', {str(FIX / 'basic_rnn.mag')!r}, "
        f"'--out', {str(tmp_path / 'm.safetensors')!r}])\n"
        "assert code == 0 and 'torch' not in sys.modules\n"
        "print('IMPORT-OK')\n"
    )
    p = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, timeout=300)
    assert "IMPORT-OK" in p.stdout, p.stderr

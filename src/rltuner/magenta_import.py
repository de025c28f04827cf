"""Import Magenta models as rltuner Note RNN checkpoints (no TensorFlow needed).

Supported: the RL Tuner's Note RNN (a TensorFlow V1 or V2 checkpoint), Magenta melody_rnn
``basic_rnn`` bundles (``.mag``) and basic_rnn training folders. The model must be LSTM layers
(any number, any widths) reading a one-hot of 38 classes and a dense layer writing 38 logits.

What the conversion does (each fact has a test in tests/test_magenta_import.py):

* TensorFlow's ``BasicLSTMCell`` / ``LSTMCell`` / ``LSTMBlockCell`` keep one kernel
  ``[input + hidden, 4 * hidden]`` (rows: the input, then the previous ``h``) and a bias
  ``[4 * hidden]``, gates in the order ``i, j, f, o`` (input, new input, forget, output), and
  compute ``c' = c * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j)``,
  ``h' = tanh(c') * sigmoid(o)``. The forget bias (1.0 by default) is added at run time and is
  NOT in the checkpoint, so the import adds it to the stored forget-gate bias. rltuner (as
  PyTorch) keeps ``W_ih (4H, in)``, ``W_hh (4H, H)``, gates ``i, f, g, o``.
* Magenta's melody one-hot (``MelodyOneHotEncoding(min_note=48, max_note=84)``) puts "no event"
  (hold) at class 0 and "note-off" at class 1; rltuner the reverse (``NOTE_OFF = 0``,
  ``NO_EVENT = 1``). Pitch classes ``k >= 2`` are MIDI ``k + 46`` in both. The import permutes
  layer 0's input columns and the output rows so the imported model predicts the same
  distribution, expressed in rltuner's classes.
* Sizes come from the tensors (basic_rnn defaults to 2 x 128 units, the RL Tuner's Note RNN to
  1 x 100).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.checkpoint import save_arrays
from rltuner.encoding import ENCODING_META, NO_EVENT, NOTE_OFF, NUM_CLASSES
from rltuner.errors import RltunerError
from rltuner.network import NOTE_RNN_FORMAT_VERSION, NOTE_RNN_KIND
from rltuner.tf_checkpoint import (
    Checkpoint,
    checkpoint_from_table,
    is_table,
    open_checkpoint,
    read_bundle,
)

__all__ = [
    "ImportResult",
    "import_note_rnn",
    "convert_lstm",
    "MAGENTA_CLASS_OF",
    "SUPPORTED_GENERATORS",
]

#: ``MAGENTA_CLASS_OF[c]`` is Magenta's class for rltuner's class ``c`` (swap 0 and 1).
MAGENTA_CLASS_OF = np.array([NO_EVENT, NOTE_OFF, *range(2, NUM_CLASSES)], dtype=np.int64)
SUPPORTED_GENERATORS = ("basic_rnn",)
_SUPPORTED = (
    "rltuner imports RL Tuner Note RNN checkpoints and Magenta melody_rnn basic_rnn models "
    "(LSTM layers over a one-hot of 38 classes, MIDI 48..83)"
)

# Checkpoint metadata of rltuner.note_rnn (kept here too: that module needs torch).

# `<prefix>[multi_rnn_cell/cell_K/]<cell>/[Linear/]<part>`, TF 0.x to 2.x spellings.
_LSTM_NAME = re.compile(
    r"^(?P<prefix>(?:.*?/)?)(?:(?:multi_rnn_cell|MultiRNNCell)/(?:cell_|Cell)(?P<k>\d+)/)?"
    r"(?P<cell>basic_lstm_cell|lstm_cell|BasicLSTMCell|LSTMCell)/(?:Linear/)?"
    r"(?P<part>kernel|weights|Matrix|bias|biases|Bias)$"
)
_OUTPUT_NAME = re.compile(r"^(?P<prefix>(?:.*/)?)fully_connected/(?P<part>weights|biases|bias)$")
_UNSUPPORTED_PARTS = re.compile(r"(w_[ifo]_diag|/projection/|attention|attn)", re.I)


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_note_rnn` wrote: the file, layer sizes and the provenance stored in
    its metadata under ``"source"``."""

    out: Path
    layer_sizes: tuple[int, ...]
    source: dict[str, Any]


@dataclass(frozen=True)
class _Found:
    layers: list[tuple[str, str]]  # (kernel name, bias name) per layer, bottom first
    output: tuple[str, str]  # (weights name, bias name)
    scope: str


def _find_model(ckpt: Checkpoint, scope: str | None, where: str) -> _Found:
    names = [n for n in ckpt.tensors if scope is None or n.startswith(scope)]
    lstm: dict[str, dict[int | None, dict[str, str]]] = {}
    outputs: dict[str, dict[str, str]] = {}
    for n in names:
        m = _LSTM_NAME.match(n)
        if m:
            part = "kernel" if m["part"] in ("kernel", "weights", "Matrix") else "bias"
            k = None if m["k"] is None else int(m["k"])
            lstm.setdefault(m["prefix"], {}).setdefault(k, {})[part] = n
            continue
        m = _OUTPUT_NAME.match(n)
        if m:
            part = "kernel" if m["part"] == "weights" else "bias"
            outputs.setdefault(m["prefix"], {})[part] = n
    found_msg = ", ".join(sorted(ckpt.tensors)[:6]) + (" ..." if len(ckpt.tensors) > 6 else "")
    if not lstm:
        raise RltunerError(
            f"{where}: no LSTM found{f' under scope {scope!r}' if scope else ''} (tensors: "
            f"{found_msg or 'none'}); {_SUPPORTED}"
        )
    if len(lstm) > 1:
        raise RltunerError(
            f"{where}: holds {len(lstm)} LSTM models (under {sorted(lstm)}); choose one with "
            f"--scope PREFIX"
        )
    prefix, cells = next(iter(lstm.items()))
    if None in cells and len(cells) > 1:
        raise RltunerError(f"{where}: LSTM cells both inside and outside a multi-layer cell")
    order = sorted(cells, key=lambda k: -1 if k is None else k)
    if order != [None] and order != list(range(len(order))):
        raise RltunerError(f"{where}: LSTM layers {order} are not numbered 0..{len(order) - 1}")
    layers = []
    for k in order:
        parts = cells[k]
        if set(parts) != {"kernel", "bias"}:
            missing = "bias" if "kernel" in parts else "kernel"
            raise RltunerError(f"{where}: LSTM layer {k or 0} has no {missing} tensor")
        layers.append((parts["kernel"], parts["bias"]))
    outs = {q: o for q, o in outputs.items() if prefix.startswith(q) and len(o) == 2}
    if not outs:
        raise RltunerError(
            f"{where}: an LSTM under {prefix!r} but no output layer "
            f"(fully_connected/weights and biases) beside it; {_SUPPORTED}"
        )
    q = max(outs, key=len)
    model_scope = q
    odd = [n for n in ckpt.tensors if n.startswith(model_scope) and _UNSUPPORTED_PARTS.search(n)]
    if odd:
        raise RltunerError(
            f"{where}: the model has parts rltuner's LSTM lacks ({odd[0]}: attention, peephole "
            f"or projection weights); {_SUPPORTED}"
        )
    return _Found(layers, (outs[q]["kernel"], outs[q]["bias"]), model_scope)


def _float_tensor(ckpt: Checkpoint, name: str, where: str) -> np.ndarray:
    a = ckpt.read(name)
    if a.dtype.kind != "f":
        raise RltunerError(f"{where}: tensor {name!r} is {a.dtype}, not floating point")
    if not np.all(np.isfinite(a)):
        raise RltunerError(f"{where}: tensor {name!r} holds NaN or infinite values")
    return a.astype(np.float32)


def convert_lstm(
    kernel: np.ndarray, bias: np.ndarray, forget_bias: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One TensorFlow LSTM layer -> rltuner's ``(W_ih (4H, in), W_hh (4H, H), b (4H,))``.

    ``kernel`` is ``[in + H, 4H]`` (gates i, j, f, o), ``bias`` ``[4H]``; ``forget_bias`` is the
    cell's run-time constant, folded into the forget gate's bias."""
    h = kernel.shape[1] // 4
    w = kernel.T  # (4H, in + H), gate blocks i, j, f, o
    i, j, f, o = (slice(g * h, (g + 1) * h) for g in range(4))
    w = np.concatenate([w[i], w[f], w[j], w[o]])  # PyTorch order i, f, g(=j), o
    b = np.concatenate([bias[i], bias[f] + np.float32(forget_bias), bias[j], bias[o]])
    n_in = kernel.shape[0] - h
    return (
        np.ascontiguousarray(w[:, :n_in], dtype=np.float32),
        np.ascontiguousarray(w[:, n_in:], dtype=np.float32),
        b.astype(np.float32),
    )


def _convert(ckpt: Checkpoint, found: _Found, where: str, forget_bias: float):
    arrays: dict[str, np.ndarray] = {}
    sizes: list[int] = []
    n_in = NUM_CLASSES
    for layer, (kname, bname) in enumerate(found.layers):
        kernel = _float_tensor(ckpt, kname, where)
        bias = _float_tensor(ckpt, bname, where)
        if kernel.ndim != 2 or kernel.shape[1] % 4 or kernel.shape[1] == 0:
            raise RltunerError(
                f"{where}: {kname} has shape {list(kernel.shape)}, not an LSTM kernel "
                f"[input + hidden, 4 * hidden]"
            )
        h = kernel.shape[1] // 4
        if bias.shape != (4 * h,):
            raise RltunerError(
                f"{where}: {bname} has shape {list(bias.shape)}, expected [{4 * h}] for an LSTM "
                f"of {h} units"
            )
        got_in = kernel.shape[0] - h
        if got_in != n_in:
            if layer == 0:
                raise RltunerError(
                    f"{where}: the first LSTM layer reads inputs of size {got_in}, but rltuner's "
                    f"Note RNN reads a one-hot of {NUM_CLASSES} classes (lookback_rnn, "
                    f"attention_rnn and polyphony models use other inputs); {_SUPPORTED}"
                )
            raise RltunerError(
                f"{where}: LSTM layer {layer} reads {got_in} inputs but the layer below has "
                f"{n_in} units"
            )
        w_ih, w_hh, b = convert_lstm(kernel, bias, forget_bias)
        if layer == 0:
            w_ih = w_ih[:, MAGENTA_CLASS_OF]  # column c of rltuner's input = Magenta's class
        arrays[f"lstms.{layer}.weight_ih_l0"] = w_ih
        arrays[f"lstms.{layer}.weight_hh_l0"] = w_hh
        arrays[f"lstms.{layer}.bias_ih_l0"] = b
        arrays[f"lstms.{layer}.bias_hh_l0"] = np.zeros_like(b)
        sizes.append(h)
        n_in = h
    wname, bname = found.output
    w_out = _float_tensor(ckpt, wname, where)
    b_out = _float_tensor(ckpt, bname, where)
    if w_out.shape != (n_in, NUM_CLASSES) or b_out.shape != (NUM_CLASSES,):
        raise RltunerError(
            f"{where}: output layer {wname} {list(w_out.shape)} / {bname} {list(b_out.shape)}, "
            f"expected [{n_in}, {NUM_CLASSES}] / [{NUM_CLASSES}]: the model predicts "
            f"{w_out.shape[-1] if w_out.ndim else '?'} classes; {_SUPPORTED}"
        )
    arrays["output.weight"] = np.ascontiguousarray(w_out.T[MAGENTA_CLASS_OF])
    arrays["output.bias"] = np.ascontiguousarray(b_out[MAGENTA_CLASS_OF])
    return arrays, tuple(sizes)


def _load_source(path: Path) -> tuple[Checkpoint, dict[str, Any]]:
    """Open ``path`` as a bundle or a checkpoint; the second item describes what it was."""
    if path.is_file() and not path.name.endswith(".index") and ".data-" not in path.name:
        try:
            with open(path, "rb") as f:
                head = f.read(1)
                size = f.seek(0, 2)
                f.seek(max(0, size - 8))
                tail = f.read(8)
        except OSError as e:
            raise RltunerError(f"{path}: cannot read ({e.strerror or e})") from None
        if size == 0:
            raise RltunerError(f"{path}: empty file; {_SUPPORTED}")
        if path.suffix == ".meta":
            raise RltunerError(
                f"{path}: a TensorFlow metagraph (the graph, without weights); pass the "
                f"checkpoint (the .index file, its prefix, or the folder)"
            )
        if path.suffix == ".mag" or (not is_table(b"\0" * 40 + tail) and head == b"\x0a"):
            bundle = read_bundle(path)
            if bundle.generator_id not in SUPPORTED_GENERATORS:
                raise RltunerError(
                    f"{path}: a Magenta bundle of generator {bundle.generator_id!r}; {_SUPPORTED} "
                    f"(generator id 'basic_rnn')"
                )
            if len(bundle.checkpoint_files) != 1:
                raise RltunerError(
                    f"{path}: a bundle with {len(bundle.checkpoint_files)} checkpoint files "
                    f"(Magenta writes exactly one)"
                )
            data = bundle.checkpoint_files[0]
            if not is_table(data):
                raise RltunerError(f"{path}: the bundle's checkpoint is not a TensorFlow table")
            ckpt = checkpoint_from_table(path, data)
            return ckpt, {
                "format": "magenta-bundle",
                "configuration": bundle.generator_id,
                "generator_description": bundle.generator_description,
                "bundle_description": bundle.bundle_description,
                "checkpoint_format": ckpt.format,
            }
    ckpt = open_checkpoint(path)
    return ckpt, {"format": ckpt.format, "checkpoint": str(ckpt.path)}


def import_note_rnn(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    scope: str | None = None,
    forget_bias: float = 1.0,
) -> ImportResult:
    """Convert a Magenta / RL Tuner model at ``path`` into an rltuner Note RNN checkpoint.

    Args:
        path: a ``.mag`` bundle (basic_rnn), a V1 checkpoint file, a V2 checkpoint (prefix,
            ``.index`` or ``.data-*`` file), or a folder with a ``checkpoint`` file (its latest
            checkpoint; a melody_rnn run folder's ``train/`` is looked into).
        out: the ``.safetensors`` file to write (atomically).
        scope: tensor-name prefix of the model to take when the checkpoint holds several.
        forget_bias: the LSTM cell's run-time forget bias (TensorFlow's default 1.0).
    Returns:
        :class:`ImportResult`. Raises :class:`RltunerError` (one line naming the file) for
        anything else.
    """
    path = Path(path)
    ckpt, source = _load_source(path)
    where = str(path)
    found = _find_model(ckpt, scope, where)
    arrays, sizes = _convert(ckpt, found, where, float(forget_bias))
    source = {
        "path": str(path.resolve()),
        **source,
        "scope": found.scope,
        "variables": {
            **{f"lstms.{i}": {"kernel": k, "bias": b} for i, (k, b) in enumerate(found.layers)},
            "output": {"weights": found.output[0], "biases": found.output[1]},
        },
        "forget_bias": float(forget_bias),
        "class_order": "Magenta's classes 0 (no event) and 1 (note-off) swapped into rltuner's",
    }
    if "configuration" not in source:
        source["configuration"] = None  # a checkpoint does not record its configuration id
    meta = {
        "kind": NOTE_RNN_KIND,
        "format_version": NOTE_RNN_FORMAT_VERSION,
        "config": {"layer_sizes": list(sizes), "num_classes": NUM_CLASSES},
        "encoding": dict(ENCODING_META),
        "training": {},
        "metrics": {},
        "source": source,
    }
    out = Path(out)
    save_arrays(out, arrays, meta)
    return ImportResult(out, sizes, source)

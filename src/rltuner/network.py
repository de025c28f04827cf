"""The LSTM networks of rltuner without torch: :class:`Network`, loading, softmax helpers.

A :class:`Network` is a Note RNN (LSTM layers of any sizes + a linear output over the 38
classes) held as one flat float32 vector in the layout of :mod:`rltuner.lstm_kernels`; its
:meth:`Network.step` is the numba forward pass (or, on a torch device, the same maths in
:mod:`rltuner.torch_backend`). Everything that runs a network -- the environment, the learner,
the sampler, evaluation -- takes it from here.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from rltuner.checkpoint import load_arrays
from rltuner.encoding import NUM_CLASSES
from rltuner.errors import RltunerError
from rltuner.lstm_kernels import NetLayout, forward

# what a Note RNN checkpoint's metadata says it is (the torch trainer and the importers write it)
NOTE_RNN_KIND = "note_rnn"
NOTE_RNN_FORMAT_VERSION = 1

__all__ = [
    "Network",
    "load_network",
    "network_from_checkpoint",
    "bundled_note_rnn_path",
    "torch_device",
    "log_softmax",
    "softmax_sample",
]


def bundled_note_rnn_path() -> Path:
    """``rltuner/data/note_rnn.safetensors``, the packaged pretrained Note RNN (it may be
    missing in a development checkout before the model is trained)."""
    return Path(str(files("rltuner") / "data" / "note_rnn.safetensors"))


def torch_device(device: str) -> str:
    """``"torch:cpu"`` -> ``"cpu"`` (the torch path on the CPU, for tests); others unchanged."""
    return device.split(":", 1)[1] if device.startswith("torch:") else device


_THREAD = threading.local()
_NO_CHORD = np.full(1, -1, dtype=np.int64)  # the conditioning of a plain network: none
_NO_ROWS = np.zeros((0, 0), dtype=np.int64)


def _scratch(size: int) -> np.ndarray:
    """This thread's float32 scratch of at least ``size`` entries (grown, never shrunk): a
    fresh multi-megabyte buffer per step cost more in page faults than the step itself."""
    buf = getattr(_THREAD, "scratch", None)
    if buf is None or buf.size < size:
        buf = _THREAD.scratch = np.empty(size, dtype=np.float32)
    return buf[:size]


@dataclass
class Network:
    """An LSTM network in the flat layout of :mod:`rltuner.lstm_kernels`."""

    layout: NetLayout
    theta: np.ndarray  # (num_params,) float32
    device: str = "cpu"  # "cpu": numba kernels; a torch device ("cuda", "torch:cpu"): torch

    def __post_init__(self) -> None:
        self._stepper = None
        if self.device != "cpu":
            from rltuner.torch_backend import TorchStepper  # torch is optional

            self._stepper = TorchStepper(self.layout, self.theta, torch_device(self.device))

    def copy(self) -> Network:
        return Network(self.layout, self.theta.copy(), self.device)

    @property
    def cond_inputs(self) -> int:
        """Conditioning features of layer 0 (chord inputs, :mod:`rltuner.conditioning`); 0 for
        a plain Note RNN."""
        return self.layout.cond_inputs

    def with_cond_inputs(self, cond_inputs: int) -> Network:
        """This network with ``cond_inputs`` conditioning rows in layer 0's input weights
        (existing rows kept, new ones zero: until trained, the outputs are unchanged)."""
        if cond_inputs == self.cond_inputs:
            return self.copy()
        if self.cond_inputs:
            raise RltunerError("the network already has conditioning inputs")
        layers, w_out, b_out = self.layout.unpack(self.theta)
        w_ih, w_hh, b = layers[0]
        wide = np.zeros((w_ih.shape[0], w_ih.shape[1] + int(cond_inputs)), dtype=np.float32)
        wide[:, : w_ih.shape[1]] = w_ih
        layers[0] = (wide, w_hh, b)
        layout = NetLayout(self.layout.layer_sizes, cond_inputs=int(cond_inputs))
        return Network(layout, layout.pack(layers, w_out, b_out), self.device)

    def to(self, device: str) -> Network:
        """A network with the same parameters that runs on ``device``."""
        return Network(self.layout, self.theta.copy(), device)

    def sync(self) -> None:
        """Push ``theta`` (changed in numpy, e.g. by loading a checkpoint) to the device."""
        if self._stepper is not None:
            self._stepper.refresh()

    def zero_state(self, batch: int) -> np.ndarray:
        return np.zeros((batch, self.layout.state_size), dtype=np.float32)

    def step(
        self,
        obs: np.ndarray,
        state: np.ndarray,
        out: tuple[np.ndarray, np.ndarray] | None = None,
        cond: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One step for a batch: ``obs (B,)`` int, ``state (B, S)`` -> ``(logits (B, 38),
        new_state (B, S))``. ``out``: float32 C-contiguous arrays of those shapes to write
        into (not ``state``; on the CPU only). ``cond = (chord (B,), rows (C, K))``: each
        input's chord (``-1`` = none) and every chord's conditioning rows
        (:mod:`rltuner.conditioning`), ignored by a plain network. Releases the GIL on the CPU
        (threads may step networks at once)."""
        b = obs.shape[0]
        if cond is None or not self.layout.cond_inputs:
            cond = (_NO_CHORD, _NO_ROWS)
        if self._stepper is not None:
            return self._stepper.step(obs, state, cond)
        if out is not None:
            logits, new_state = out
        else:
            logits = np.empty((b, NUM_CLASSES), dtype=np.float32)
            new_state = np.empty((b, self.layout.state_size), dtype=np.float32)
        lay = self.layout
        scratch = _scratch(2 * b * 4 * max(lay.layer_sizes)).reshape(2, -1)
        forward(
            self.theta,
            lay.lmeta,
            lay.ometa,
            np.ascontiguousarray(obs, dtype=np.int64),
            np.ascontiguousarray(cond[0], dtype=np.int64),
            np.ascontiguousarray(cond[1], dtype=np.int64),
            np.ascontiguousarray(state, dtype=np.float32),
            new_state,
            logits,
            scratch[0],
            scratch[1],
        )
        return logits, new_state

    def weights_hash(self) -> str:
        """SHA-256 (hex) of the architecture and the float32 parameters: the identity of a
        prior recorded in tuned checkpoints. Equal for the same weights on any machine."""
        h = hashlib.sha256()
        arch = "lstm:" + ",".join(str(s) for s in self.layout.layer_sizes)
        if self.layout.cond_inputs:
            arch += f"+cond{self.layout.cond_inputs}"
        h.update((arch + ";").encode())
        h.update(np.ascontiguousarray(self.theta, dtype="<f4").tobytes())
        return h.hexdigest()

    def to_state_dict(self) -> dict[str, np.ndarray]:
        """Arrays named as :class:`rltuner.note_rnn.NoteRNN`'s ``state_dict``."""
        layers, w_out, b_out = self.layout.unpack(self.theta)
        d: dict[str, np.ndarray] = {}
        for l, (w_ih, w_hh, b) in enumerate(layers):
            d[f"lstms.{l}.weight_ih_l0"] = w_ih
            d[f"lstms.{l}.weight_hh_l0"] = w_hh
            d[f"lstms.{l}.bias_ih_l0"] = b
            d[f"lstms.{l}.bias_hh_l0"] = np.zeros_like(b)
        d["output.weight"] = w_out
        d["output.bias"] = b_out
        return d

    @classmethod
    def from_state_dict(
        cls,
        arrays: dict[str, np.ndarray],
        layer_sizes: tuple[int, ...],
        source: str = "checkpoint",
        cond_inputs: int = 0,
    ) -> Network:
        layout = NetLayout(tuple(int(h) for h in layer_sizes), cond_inputs=int(cond_inputs))
        layers = []
        try:
            for l in range(len(layout.layer_sizes)):
                p = f"lstms.{l}."
                layers.append(
                    (
                        arrays[p + "weight_ih_l0"],
                        arrays[p + "weight_hh_l0"],
                        arrays[p + "bias_ih_l0"] + arrays[p + "bias_hh_l0"],
                    )
                )
            theta = layout.pack(layers, arrays["output.weight"], arrays["output.bias"])
        except (KeyError, ValueError) as e:
            raise RltunerError(
                f"{source}: architecture mismatch: its tensors do not fit layer sizes "
                f"{list(layout.layer_sizes)} ({type(e).__name__}: {e})"
            ) from None
        return cls(layout, theta)


def network_from_checkpoint(arrays: dict[str, np.ndarray], meta: dict, source: str) -> Network:
    """The network of a Note RNN checkpoint's arrays and metadata (``source`` names it in
    errors)."""
    if meta.get("kind") != NOTE_RNN_KIND:
        raise RltunerError(f"{source}: not a Note RNN checkpoint (kind is {meta.get('kind')!r})")
    cfg = meta.get("config", {})
    if int(cfg.get("num_classes", NUM_CLASSES)) != NUM_CLASSES:
        raise RltunerError(f"{source}: model has {cfg.get('num_classes')} classes, expected 38")
    sizes = tuple(cfg.get("layer_sizes", ()))
    if not sizes:
        raise RltunerError(f"{source}: checkpoint metadata lacks the layer sizes")
    cond = cfg.get("cond_inputs", 0)
    if not isinstance(cond, int) or isinstance(cond, bool) or cond < 0:
        raise RltunerError(f"{source}: bad cond_inputs {cond!r} in its metadata")
    return Network.from_state_dict(arrays, sizes, source=source, cond_inputs=cond)


def load_network(path: str | Path) -> tuple[Network, dict]:
    """Load a Note RNN checkpoint (``rltuner note-rnn train`` output, or the network of a
    tuned checkpoint) without torch: ``(network, metadata)``."""
    arrays, meta = load_arrays(path, what="Note RNN checkpoint")
    arrays = {k: v for k, v in arrays.items() if not k.startswith("prior/")}
    return network_from_checkpoint(arrays, meta, str(path)), meta


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64, ``(B, 38)``."""
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))


def softmax_sample(
    logits: np.ndarray, rng: np.random.Generator, temperature: float = 1.0
) -> np.ndarray:
    """One class per row drawn from ``softmax(logits / temperature)`` (inverse CDF)."""
    x = logits.astype(np.float64) / temperature
    x -= x.max(axis=1, keepdims=True)
    p = np.exp(x)
    c = np.cumsum(p, axis=1)
    u = rng.random(x.shape[0]) * c[:, -1]
    out = (c < u[:, None]).sum(axis=1)
    return np.minimum(out, NUM_CLASSES - 1)

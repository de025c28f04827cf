"""Config fields that carry their own help text, and the checks of their values.

Every command's options come from a config dataclass (``TunerConfig``, ``TrainConfig``,
``GenerateConfig`` ...). A field declared with :func:`option` keeps its one-line description in
``field.metadata["help"]``; the CLI turns it into ``--help`` text and appends the default, so a
default is written once, in the dataclass. A field whose default is ``None`` must say in its help
what ``None`` means (the CLI prints no ``(default: None)`` for it).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from rltuner.errors import RltunerError, missing_torch

__all__ = ["option", "field_help", "check_int", "check_range", "check_device"]


def option(default: Any = dataclasses.MISSING, *, help: str,
           factory: Callable[[], Any] | None = None) -> Any:  # fmt: skip
    """A dataclass field with ``default`` (or ``factory`` for a mutable default) and ``help``."""
    if not help.strip():
        raise ValueError("an option needs a non-empty help text")
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def field_help(f: dataclasses.Field) -> str:
    """The help text of a dataclass field ("" when it has none)."""
    return str(f.metadata.get("help", ""))


# ------------------------------------------------------------------ validation helpers
# Each raises RltunerError with one sentence naming the option (its CLI spelling).
def _flag(name: str) -> str:
    return ("-" if len(name) == 1 else "--") + name.replace("_", "-")


def check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    """``value`` is an int (not a bool) with ``low <= value`` (``<= high`` when given)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise RltunerError(f"{_flag(name)} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise RltunerError(f"{_flag(name)} must be {bound}, got {value}")


def check_range(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
                high_open: bool = False) -> None:  # fmt: skip
    """``value`` is a finite number in the interval ``[low, high]`` (open ends as told)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise RltunerError(f"{_flag(name)} must be a number, got {value!r}")
    v = float(value)
    ok = (
        math.isfinite(v)
        and (v > low if low_open else v >= low)
        and (v < high if high_open else v <= high)
    )
    if not ok:
        lo = f"{'(' if low_open else '['}{low:g}"
        hi = f"{high:g}{')' if high_open else ']'}" if math.isfinite(high) else "inf)"
        raise RltunerError(f"{_flag(name)} must lie in {lo}, {hi}, got {value}")


def check_device(device: str) -> None:
    """``cpu`` or a torch device this machine has (``cuda``, ``cuda:1``, ``mps``, ``torch:cpu``).
    Imports torch only for a non-``cpu`` device."""
    if device == "cpu":
        return
    try:
        import torch
    except ImportError:
        raise missing_torch(f"--device {device}") from None
    try:  # "torch:cpu" is the torch path on the CPU (tests, and a check of the CUDA maths)
        d = torch.device(device.removeprefix("torch:"))
    except (RuntimeError, ValueError, TypeError):
        raise RltunerError(
            f"--device {device!r} is not a device; use cpu, cuda, cuda:N or mps"
        ) from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise RltunerError(
                f"--device {device}: no CUDA GPU is usable here (PyTorch {torch.__version__}"
                f"{', built without CUDA' if torch.version.cuda is None else ''}); use --device cpu"
            )
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise RltunerError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif d.type == "mps":
        if not torch.backends.mps.is_available():
            raise RltunerError(f"--device {device}: MPS is not available here; use --device cpu")
    elif d.type != "cpu":
        raise RltunerError(f"--device {device}: unsupported device type; use cpu, cuda or mps")

"""The project's own error: one clear sentence naming the file and the problem."""

from __future__ import annotations

__all__ = ["RltunerError", "TORCH_INSTALL_HINT", "missing_torch"]

#: How to get PyTorch, which only Note RNN training and ``--device cuda`` need (see the README's
#: "Installing" section).
TORCH_INSTALL_HINT = (
    "pip install 'rltuner[torch]' (for a CPU-only torch without the CUDA libraries of several GB: "
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
)


class RltunerError(Exception):
    """A user-facing error. The CLI prints ``str(err)`` and exits with code 2."""


def missing_torch(feature: str) -> RltunerError:
    """The error raised when ``feature`` needs PyTorch and it is not installed."""
    return RltunerError(f"{feature} needs PyTorch, which is not installed: {TORCH_INSTALL_HINT}")

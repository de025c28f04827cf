"""rltuner: fine-tune a melody LSTM with reinforcement learning and music-theory rewards.

``from rltuner import RLTuner, TunerConfig`` is the API's front door. The two names are loaded
on first use (PEP 562), so that ``import rltuner.encoding`` or ``rltuner --version`` does not pay
for the tuner's numba kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RLTuner", "TunerConfig", "__version__"]

if TYPE_CHECKING:
    from rltuner.tuner import RLTuner, TunerConfig


def __getattr__(name: str) -> Any:
    if name in ("RLTuner", "TunerConfig"):
        from rltuner import tuner

        return getattr(tuner, name)
    raise AttributeError(f"module 'rltuner' has no attribute {name!r}")

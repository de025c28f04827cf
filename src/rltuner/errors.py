"""The project's own error: one clear sentence naming the file and the problem."""

from __future__ import annotations

__all__ = ["RltunerError"]


class RltunerError(Exception):
    """A user-facing error. The CLI prints ``str(err)`` and exits with code 2."""

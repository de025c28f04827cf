"""TensorBoard scalar logs of a run, written with tensorboardX (no TensorFlow).

:class:`ScalarWriter` appends each logged row to a new event file of this process. A resumed
run opens its file with tensorboardX's ``purge_step`` (a ``SessionLog START`` event) one step
after its checkpoint, so TensorBoard drops the points that an interrupted process logged after
that checkpoint, as ``metrics.jsonl`` does. :func:`read_scalars` reads a log folder back with
TensorBoard's own reader (``pip install tensorboard``; tests, notebooks).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from rltuner.errors import RltunerError

__all__ = ["ScalarWriter", "read_scalars"]


class ScalarWriter:
    """Scalar points to a new event file in ``log_dir``, through tensorboardX's event writer.

    ``resume_step`` (a resumed run: the checkpoint's step) opens the file with a purge at
    ``resume_step + 1``, as tensorboardX's ``SummaryWriter(purge_step=...)`` does: TensorBoard
    drops the points of earlier files from there on. Each :meth:`add_scalars` call is on disk
    when it returns (runs log once per evaluation window, and a killed run must not lose the
    points of its last checkpoint); ``SummaryWriter`` would queue them for a thread."""

    def __init__(self, log_dir: str | os.PathLike, resume_step: int | None = None) -> None:
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # tensorboardX names files by the second and the host; the nanoseconds and the process
        # keep two writers of one second apart and in the order they were made
        suffix = f".{time.time_ns() % 10**9:09d}.{os.getpid()}"
        self._writer = EventsWriter(str(self.log_dir / "events"), filename_suffix=suffix)
        self.path = Path(self._writer._file_name)
        if resume_step is not None:  # what SummaryWriter(purge_step=resume_step + 1) writes
            start = SessionLog(status=SessionLog.START)
            self._writer.write_event(
                Event(wall_time=time.time(), step=int(resume_step) + 1, session_log=start)
            )
        self._writer.flush()

    def add_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One point per tag at ``step`` (non-numeric values are skipped)."""
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        # the tags as logged (tensorboardX.summary.scalar would turn "table1/Notes in motif"
        # into "table1/Notes_in_motif"); one event per row
        points = [
            Summary.Value(tag=tag, simple_value=float(v))
            for tag, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        summary = Summary(value=points)
        self._writer.write_event(Event(wall_time=time.time(), step=int(step), summary=summary))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def read_scalars(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files in ``log_dir`` as ``tag -> [(step, value), …]``, read by
    TensorBoard's ``EventAccumulator`` (its purges applied, nothing subsampled)."""
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
    except ImportError:
        raise RltunerError(
            "reading TensorBoard logs needs the tensorboard package: "
            "pip install 'rltuner[tensorboard]'"
        ) from None
    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}

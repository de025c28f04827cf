"""TensorBoard scalar logs without TensorFlow or the ``tensorboard`` package.

A TensorBoard log is a file ``events.out.tfevents.<time>.<host>`` of TFRecord frames, each
holding one serialised ``tensorflow.Event`` protocol buffer. A frame is::

    uint64 length (little endian) | uint32 masked CRC-32C of the length bytes
    bytes  data                   | uint32 masked CRC-32C of the data

with ``masked(c) = ((c >> 15 | c << 17) + 0xa282ead8) mod 2**32``. The few Event fields written
here (``tensorflow/core/util/event.proto``, ``framework/summary.proto``)::

    Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
              Summary summary = 5; SessionLog session_log = 7; }
    Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
    SessionLog { SessionStatus status = 1; }  (START = 1)

A resumed run writes a new file that opens with ``SessionLog START`` one step after its
checkpoint: TensorBoard drops the points of earlier files from that step on (the ones an
interrupted run logged after its last checkpoint), as ``metrics.jsonl`` does.
:func:`read_scalars` reads the files back (tests, notebooks).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ScalarWriter", "read_scalars", "crc32c"]


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord frames use it."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are ten-byte two's complement varints
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, **fields: bytes) -> bytes:
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(step)
    for number, name in ((3, "file_version"), (5, "summary"), (7, "session_log")):
        if name in fields:
            msg += _len_field(number, fields[name])
    return msg


def _frame(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    crc = struct.Struct("<I").pack
    return header + crc(_masked_crc(header)) + data + crc(_masked_crc(data))


class ScalarWriter:
    """Append scalar points to a new event file in ``log_dir``.

    ``resume_step`` (a resumed run: the checkpoint's step) writes ``SessionLog START`` at
    ``resume_step + 1`` first, so TensorBoard discards points of earlier files beyond it. Each
    :meth:`add_scalars` call is flushed to disk at once (runs log once per evaluation window)."""

    def __init__(self, log_dir: str | os.PathLike, resume_step: int | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}"
        self.path = self.log_dir / name
        n = 0
        while self.path.exists():  # two writers within one second in one process
            n += 1
            self.path = self.log_dir / f"{name}.{n}"
        with open(self.path, "xb") as f:
            f.write(_frame(_event(now, 0, file_version=b"brain.Event:2")))
            if resume_step is not None:
                start = _varint(1 << 3) + b"\x01"  # SessionLog{status: START}
                f.write(_frame(_event(now, int(resume_step) + 1, session_log=start)))

    def add_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One point per tag at ``step`` (non-numeric values are skipped)."""
        summary = b""
        for tag, v in values.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            value = _len_field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", v)
            summary += _len_field(1, value)
        with open(self.path, "ab") as f:
            f.write(_frame(_event(time.time(), int(step), summary=summary)))


# ------------------------------------------------------------------------------ reading
def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message: ints for varints, bytes for
    length-delimited and fixed-width fields."""
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
        elif wire == 1:
            v, i = buf[i : i + 8], i + 8
        elif wire == 5:
            v, i = buf[i : i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i : i + n], i + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, v


def _records(path: Path):
    data = path.read_bytes()
    i = 0
    while i + 12 <= len(data):
        header = data[i : i + 8]
        (n,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[i + 8 : i + 12])
        body = data[i + 12 : i + 12 + n]
        if hcrc != _masked_crc(header) or i + 16 + n > len(data):
            raise ValueError(f"{path}: corrupt TFRecord frame at byte {i}")
        (dcrc,) = struct.unpack("<I", data[i + 12 + n : i + 16 + n])
        if dcrc != _masked_crc(body):
            raise ValueError(f"{path}: bad data checksum at byte {i}")
        yield body
        i += 16 + n


def read_scalars(log_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files in ``log_dir`` (in file-name order) as ``tag ->
    [(step, value), …]``, applying ``SessionLog START`` purges as TensorBoard does (points
    at or after the START event's step are dropped)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        for rec in _records(path):
            step, summary, start = 0, None, False
            for number, _, v in _fields(rec):
                if number == 2:
                    step = v
                elif number == 5:
                    summary = v
                elif number == 7:
                    start = any(n == 1 and s == 1 for n, _, s in _fields(v))
            if start:
                for points in out.values():
                    points[:] = [p for p in points if p[0] < step]
            if summary is None:
                continue
            for number, _, value in _fields(summary):
                if number != 1:
                    continue
                tag, x = "", None
                for n, _, v in _fields(value):
                    if n == 1:
                        tag = v.decode()
                    elif n == 2:
                        (x,) = struct.unpack("<f", v)
                if x is not None:
                    out.setdefault(tag, []).append((step, x))
    return out

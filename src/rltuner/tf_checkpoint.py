"""Read TensorFlow checkpoints (V1 and V2) and Magenta ``.mag`` bundles without TensorFlow.

Formats (checked against files written by TensorFlow 2.21; details in docs/magenta_import.md):

* **Table** (LevelDB's sorted string table, as TensorFlow's ``lib/io/table``): data blocks,
  an index block, and a 48-byte footer = two block handles (varint offset, varint size), zero
  padding, magic ``0xdb4775248b80fb57`` (little-endian). Every block is followed by a 5-byte
  trailer: compression type (0 = none, 1 = snappy) and the masked CRC-32C of block + type byte.
  A block holds prefix-compressed entries (varints ``shared``, ``non_shared``, ``value_size``,
  the key's new bytes, the value) then ``uint32`` restart offsets and their count.
* **V2 checkpoint** (``NAME.index`` + ``NAME.data-SSSSS-of-NNNNN``): the index is a table whose
  entry ``""`` is a ``BundleHeaderProto`` (num_shards = 1, endianness = 2) and whose other keys
  are tensor names mapping to ``BundleEntryProto`` (dtype = 1, shape = 2, shard_id = 3,
  offset = 4, size = 5, masked crc32c = 6, slices = 7). A tensor is ``size`` raw little-endian
  bytes at ``offset`` of its data shard.
* **V1 checkpoint** (one file, as Magenta bundles and the RL Tuner's ``note_rnn.ckpt``): a table
  whose entry ``""`` is ``SavedTensorSlices{meta}`` listing tensors (name, shape, dtype) and whose
  other entries are ``SavedTensorSlices{data: SavedSlice{name, slice, TensorProto}}``.
* **Magenta bundle** (``.mag``): a ``GeneratorBundle`` protobuf: generator_details = 1
  (id = 1, description = 2), checkpoint_file = 2 (repeated bytes: one V1 checkpoint),
  metagraph_file = 3, bundle_details = 4 (description = 1).

Everything is bounds-checked against the file: a truncated, corrupt or foreign file raises
:class:`~rltuner.errors.RltunerError` naming the file, never allocates more than the file holds.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numba as nb
import numpy as np

from rltuner.errors import RltunerError

__all__ = [
    "TensorInfo",
    "Checkpoint",
    "MagentaBundle",
    "open_checkpoint",
    "read_bundle",
    "crc32c",
    "MAX_FILE_BYTES",
]

#: Largest file read into memory (a 2-layer 512-unit basic_rnn bundle is ~20 MB).
MAX_FILE_BYTES = 1 << 30
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 9: "<i8", 19: "<f2", 14: "bfloat16"}
_DTYPE_NAMES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    9: "int64", 10: "bool", 14: "bfloat16", 19: "float16", 20: "resource", 21: "variant",
}  # fmt: skip


class _Corrupt(Exception):
    """Internal: the bytes do not follow the format (the caller adds the file name)."""


# ---------------------------------------------------------------------- CRC-32C (Castagnoli)
def _crc_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t[i] = c
    return t


_CRC_TABLE = _crc_table()


@nb.njit(cache=True)
def _crc32c_kernel(data: np.ndarray, table: np.ndarray) -> np.uint32:
    c = np.uint32(0xFFFFFFFF)
    for b in data:
        c = table[(c ^ np.uint32(b)) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    return c ^ np.uint32(0xFFFFFFFF)


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C of ``data`` (``crc32c(b"123456789") == 0xE3069283``)."""
    return int(_crc32c_kernel(np.frombuffer(data, dtype=np.uint8), _CRC_TABLE))


def _unmask(masked: int) -> int:
    """Undo LevelDB's CRC masking ``((c >> 15) | (c << 17)) + 0xa282ead8``."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---------------------------------------------------------------------- protobuf wire format
def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Corrupt("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Corrupt("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """``(field number, wire type, value)`` of a protobuf message: ints for varints, memoryviews
    for fixed and length-delimited fields."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Corrupt("protobuf field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
            continue
        if wire == 2:
            size, pos = _varint(buf, pos, end)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise _Corrupt(f"unsupported protobuf wire type {wire}")
        if size > end - pos:
            raise _Corrupt("protobuf field runs past the end of its message")
        yield number, wire, buf[pos : pos + size]
        pos += size


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _shape(buf: memoryview) -> tuple[int, ...]:
    """``TensorShapeProto``: dim = 2 (``Dim{size = 1}``), unknown_rank = 3."""
    dims = []
    for number, wire, value in _fields(buf):
        if number == 2 and wire == 2:
            size = 0
            for n2, w2, v2 in _fields(value):
                if n2 == 1 and w2 == 0:
                    size = _int64(v2)
            if size < 0:
                raise _Corrupt(f"tensor dimension of unknown or negative size {size}")
            dims.append(size)
        elif number == 3 and wire == 0 and value:
            raise _Corrupt("tensor shape of unknown rank")
    if len(dims) > 32:
        raise _Corrupt(f"tensor of rank {len(dims)}")
    return tuple(dims)


# ---------------------------------------------------------------------- sorted string table
def _block(data: memoryview, offset: int, size: int, limit: int) -> memoryview:
    if offset < 0 or size < 0 or offset + size + 5 > limit:
        raise _Corrupt(f"table block at {offset} (+{size} bytes) lies outside the file")
    kind = data[offset + size]
    (masked,) = struct.unpack_from("<I", data, offset + size + 1)
    if crc32c(data[offset : offset + size + 1]) != _unmask(masked):
        raise _Corrupt(f"checksum mismatch in the table block at byte {offset}")
    if kind == 1:
        raise _Corrupt("a table block is snappy-compressed, which rltuner does not read "
                       "(TensorFlow writes checkpoints uncompressed)")  # fmt: skip
    if kind != 0:
        raise _Corrupt(f"unknown table block compression type {kind}")
    return data[offset : offset + size]


def _block_entries(block: memoryview) -> Iterator[tuple[bytes, memoryview]]:
    if len(block) < 4:
        raise _Corrupt("table block shorter than its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * num_restarts
    if end < 0:
        raise _Corrupt("table block restart array larger than the block")
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos, end)
        non_shared, pos = _varint(block, pos, end)
        value_size, pos = _varint(block, pos, end)
        if shared > len(key) or non_shared + value_size > end - pos:
            raise _Corrupt("table entry runs past the end of its block")
        key = key[:shared] + bytes(block[pos : pos + non_shared])
        pos += non_shared
        yield key, block[pos : pos + value_size]
        pos += value_size


def _handle(buf: memoryview, pos: int, end: int) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos, end)
    size, pos = _varint(buf, pos, end)
    return offset, size, pos


def is_table(data: bytes | memoryview) -> bool:
    """True when ``data`` ends with a table footer (a V1 checkpoint or a V2 index)."""
    return (
        len(data) >= _FOOTER_BYTES
        and struct.unpack_from("<Q", data, len(data) - 8)[0] == _TABLE_MAGIC
    )


def _table(data: memoryview) -> Iterator[tuple[bytes, memoryview]]:
    if len(data) < _FOOTER_BYTES:
        raise _Corrupt(f"{len(data)} bytes, too short for a TensorFlow table")
    if not is_table(data):
        raise _Corrupt("no TensorFlow table footer (wrong magic number)")
    footer_at = len(data) - _FOOTER_BYTES
    _, _, pos = _handle(data, footer_at, footer_at + 40)  # metaindex: unused by TensorFlow
    index_off, index_size, _ = _handle(data, pos, footer_at + 40)
    index = _block(data, index_off, index_size, footer_at)
    for _, handle in _block_entries(index):
        off, size, _ = _handle(handle, 0, len(handle))
        yield from _block_entries(_block(data, off, size, footer_at))


# ---------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class TensorInfo:
    """A stored tensor: its name, TensorFlow dtype name and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass
class Checkpoint:
    """Tensors of a V1 or V2 checkpoint. ``read(name)`` decodes one tensor (float arrays come
    back as float32 or float64, as stored)."""

    path: Path
    format: str  # "tensorflow-v2" or "tensorflow-v1"
    tensors: dict[str, TensorInfo]
    label: str = ""  # the file named in errors (default: path)
    _readers: dict[str, object] = field(default_factory=dict, repr=False)

    def read(self, name: str) -> np.ndarray:
        try:
            return self._readers[name]()  # type: ignore[operator]
        except _Corrupt as e:
            where = self.label or self.path
            raise RltunerError(f"{where}: tensor {name!r} cannot be read: {e}") from None


def _decode(raw: bytes | memoryview, dtype_enum: int, shape: tuple[int, ...]) -> np.ndarray:
    code = _DTYPES.get(dtype_enum)
    if code is None:
        raise _Corrupt(f"unsupported dtype {_DTYPE_NAMES.get(dtype_enum, dtype_enum)}")
    count = math.prod(shape)
    if code == "bfloat16":
        if len(raw) != 2 * count:
            raise _Corrupt(f"{len(raw)} bytes for a bfloat16 tensor of shape {list(shape)}")
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    dt = np.dtype(code)
    if len(raw) != dt.itemsize * count:
        raise _Corrupt(f"{len(raw)} bytes for a {dt.name} tensor of shape {list(shape)}")
    return np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="), copy=True).reshape(shape)


def _read_file(path: Path, what: str) -> bytes:
    if path.exists() and not path.is_file():  # a device or pipe could be endless
        raise RltunerError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RltunerError(f"{path}: {size:,} bytes, larger than any {what} rltuner reads")
        return path.read_bytes()
    except OSError as e:
        raise RltunerError(f"{path}: cannot read {what} ({e.strerror or e})") from None


def _open_v2(prefix: Path) -> Checkpoint:
    index_path = Path(str(prefix) + ".index")
    data = memoryview(_read_file(index_path, "checkpoint index"))
    header = None
    entries: dict[str, dict[str, object]] = {}
    try:
        for key, value in _table(data):
            if key == b"":
                header = {n: v for n, w, v in _fields(value) if w == 0}
                continue
            name = key.decode("utf-8", errors="replace")
            e: dict[str, object] = {"dtype": 0, "shape": (), "shard": 0, "offset": 0, "size": 0}
            for number, wire, v in _fields(value):
                if number == 1 and wire == 0:
                    e["dtype"] = v
                elif number == 2 and wire == 2:
                    e["shape"] = _shape(v)
                elif number == 3 and wire == 0:
                    e["shard"] = v
                elif number == 4 and wire == 0:
                    e["offset"] = _int64(v)
                elif number == 5 and wire == 0:
                    e["size"] = _int64(v)
                elif number == 6 and wire == 5:
                    e["crc"] = struct.unpack("<I", v)[0]
                elif number == 7:
                    e["sliced"] = True
            entries[name] = e
    except _Corrupt as err:
        raise RltunerError(
            f"{index_path}: not a readable TensorFlow checkpoint index ({err})"
        ) from None
    if header is None:
        raise RltunerError(f"{index_path}: TensorFlow table without a checkpoint header entry")
    if header.get(2, 0) != 0:
        raise RltunerError(f"{index_path}: big-endian checkpoint; rltuner reads little-endian ones")
    num_shards = header.get(1, 1)
    if not 1 <= num_shards <= 100_000:
        raise RltunerError(f"{index_path}: implausible number of data shards {num_shards}")
    ckpt = Checkpoint(prefix, "tensorflow-v2", {}, label=str(index_path))
    for name, e in entries.items():
        info = TensorInfo(name, _DTYPE_NAMES.get(e["dtype"], str(e["dtype"])), e["shape"])
        ckpt.tensors[name] = info
        ckpt._readers[name] = _v2_reader(prefix, num_shards, name, e)
    return ckpt


def _v2_reader(prefix: Path, num_shards: int, name: str, e: dict):
    def read() -> np.ndarray:
        if e.get("sliced"):
            raise _Corrupt("stored in slices (a partitioned variable), which rltuner does not read")
        shard = e["shard"]
        if not 0 <= shard < num_shards:
            raise _Corrupt(f"shard {shard} of {num_shards}")
        path = Path(f"{prefix}.data-{shard:05d}-of-{num_shards:05d}")
        offset, size = e["offset"], e["size"]
        try:
            with open(path, "rb") as f:
                total = f.seek(0, 2)
                if offset < 0 or size < 0 or offset + size > total:
                    raise _Corrupt(
                        f"bytes {offset}..{offset + size} lie outside {path.name} ({total} bytes)"
                    )
                f.seek(offset)
                raw = f.read(size)
        except OSError as err:
            raise _Corrupt(
                f"cannot read its data file {path.name} ({err.strerror or err})"
            ) from None
        if "crc" in e and crc32c(raw) != _unmask(e["crc"]):
            raise _Corrupt(f"checksum mismatch in {path.name}")
        return _decode(raw, e["dtype"], e["shape"])

    return read


def _tensor_proto(buf: memoryview) -> tuple[int, bytes]:
    """``TensorProto`` -> ``(dtype enum, little-endian bytes)`` from tensor_content = 4,
    float_val = 5, double_val = 6 (packed or not)."""
    dtype, content = 0, None
    floats: list[bytes] = []
    doubles: list[bytes] = []
    for number, wire, v in _fields(buf):
        if number == 1 and wire == 0:
            dtype = v
        elif number == 4 and wire == 2:
            content = bytes(v)
        elif number == 5 and wire in (2, 5):
            if len(v) % 4:
                raise _Corrupt("packed float values of a length not a multiple of 4")
            floats.append(bytes(v))
        elif number == 6 and wire in (2, 1):
            if len(v) % 8:
                raise _Corrupt("packed double values of a length not a multiple of 8")
            doubles.append(bytes(v))
    if content is not None:
        return dtype, content
    return dtype, b"".join(floats if dtype != 2 else doubles)


def _slice_extents(buf: memoryview, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """``TensorSliceProto{extent = 1: Extent{start = 1, length = 2}}``; no length = all."""
    extents = []
    for number, wire, v in _fields(buf):
        if number == 1 and wire == 2:
            start, length = 0, None
            for n2, w2, v2 in _fields(v):
                if n2 == 1 and w2 == 0:
                    start = _int64(v2)
                elif n2 == 2 and w2 == 0:
                    length = _int64(v2)
            extents.append((start, length))
    if not extents:
        extents = [(0, None)] * len(shape)
    if len(extents) != len(shape):
        raise _Corrupt(f"a slice of rank {len(extents)} of a tensor of rank {len(shape)}")
    out = []
    for (start, length), dim in zip(extents, shape, strict=True):
        length = dim - start if length is None else length
        if start < 0 or length < 0 or start + length > dim:
            raise _Corrupt(f"slice {start}..{start + length} outside a dimension of size {dim}")
        out.append(slice(start, start + length))
    return tuple(out)


def _open_v1(path: Path, data: bytes) -> Checkpoint:
    mv = memoryview(data)
    metas: dict[str, tuple[int, tuple[int, ...]]] = {}
    slices: dict[str, list[tuple[memoryview, memoryview]]] = {}
    try:
        for key, value in _table(mv):
            for number, wire, v in _fields(value):
                if number == 1 and wire == 2 and key == b"":  # SavedTensorSliceMeta
                    for n2, w2, t in _fields(v):
                        if n2 != 1 or w2 != 2:
                            continue
                        name, dtype, shape = "", 0, ()
                        for n3, w3, x in _fields(t):
                            if n3 == 1 and w3 == 2:
                                name = bytes(x).decode("utf-8", errors="replace")
                            elif n3 == 2 and w3 == 2:
                                shape = _shape(x)
                            elif n3 == 3 and w3 == 0:
                                dtype = x
                        metas[name] = (dtype, shape)
                elif number == 2 and wire == 2:  # SavedSlice
                    name, sl, tensor = "", memoryview(b""), memoryview(b"")
                    for n2, w2, x in _fields(v):
                        if n2 == 1 and w2 == 2:
                            name = bytes(x).decode("utf-8", errors="replace")
                        elif n2 == 2 and w2 == 2:
                            sl = x
                        elif n2 == 3 and w2 == 2:
                            tensor = x
                    slices.setdefault(name, []).append((sl, tensor))
    except _Corrupt as err:
        raise RltunerError(f"{path}: not a readable TensorFlow V1 checkpoint ({err})") from None
    if not metas:
        raise RltunerError(f"{path}: TensorFlow table without a V1 checkpoint's tensor list")
    ckpt = Checkpoint(path, "tensorflow-v1", {})
    for name, (dtype, shape) in metas.items():
        ckpt.tensors[name] = TensorInfo(name, _DTYPE_NAMES.get(dtype, str(dtype)), shape)
        ckpt._readers[name] = _v1_reader(dtype, shape, slices.get(name, []), len(data))
    return ckpt


def _v1_reader(dtype: int, shape: tuple[int, ...], parts: list, file_bytes: int):
    def read() -> np.ndarray:
        if dtype not in (1, 2):
            raise _Corrupt(f"unsupported dtype {_DTYPE_NAMES.get(dtype, dtype)}")
        itemsize = 8 if dtype == 2 else 4
        if math.prod(shape) * itemsize > file_bytes:
            raise _Corrupt(f"shape {list(shape)} is larger than the file")
        out = np.zeros(shape, dtype=np.float64 if dtype == 2 else np.float32)
        filled = np.zeros(shape, dtype=bool)
        for sl, tensor in parts:
            region = _slice_extents(sl, shape)
            sub_shape = tuple(s.stop - s.start for s in region)
            t_dtype, raw = _tensor_proto(tensor)
            if t_dtype not in (0, dtype):
                raise _Corrupt("a slice's dtype differs from the tensor's")
            values = _decode(raw, dtype, sub_shape)
            if filled[region].any():
                raise _Corrupt("overlapping slices")
            out[region] = values
            filled[region] = True
        if not filled.all():
            raise _Corrupt("its slices do not cover the whole tensor")
        return out

    return read


_STEP = re.compile(r"-(\d+)$")


def _latest_in_folder(folder: Path) -> Path | None:
    """The checkpoint a folder points at: its ``checkpoint`` state file's
    ``model_checkpoint_path`` (taken relative to the folder when the recorded path does not
    exist, e.g. a folder copied from another machine), else the ``*.index`` of the highest
    step. ``None`` when there is none."""
    state = folder / "checkpoint"
    if state.is_file():
        try:
            text = state.read_text(errors="replace")[:1_000_000]
        except OSError:
            text = ""
        m = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
        if m:
            recorded = Path(m.group(1))
            for cand in (recorded, folder / recorded, folder / recorded.name):
                if Path(str(cand) + ".index").is_file() or cand.is_file():
                    return cand
    indexes = sorted(folder.glob("*.index"))
    if not indexes:
        return None

    def step(p: Path) -> int:
        m = _STEP.search(p.name[: -len(".index")])
        return int(m.group(1)) if m else -1

    return Path(str(max(indexes, key=step))[: -len(".index")])


def open_checkpoint(path: str | Path) -> Checkpoint:
    """Open a checkpoint given as a V2 prefix (``NAME``), its ``NAME.index`` or
    ``NAME.data-*`` file, a V1 single file, or a folder (its ``checkpoint`` file's latest, or
    that of its ``train/`` subfolder: a melody_rnn run folder)."""
    path = Path(path)
    if path.is_dir():
        for folder in (path, path / "train"):
            if folder.is_dir():
                found = _latest_in_folder(folder)
                if found is not None:
                    return open_checkpoint(found)
        raise RltunerError(
            f"{path}: folder without a TensorFlow checkpoint (no 'checkpoint' file, no *.index)"
        )
    name = path.name
    if name.endswith(".index"):
        return _open_v2(path.with_name(name[: -len(".index")]))
    m = re.search(r"\.data-\d{5}-of-\d{5}$", name)
    if m:
        return _open_v2(path.with_name(name[: m.start()]))
    if Path(str(path) + ".index").is_file():
        return _open_v2(path)
    if not path.exists():
        raise RltunerError(f"{path}: no such file, folder or checkpoint prefix")
    data = _read_file(path, "checkpoint")
    if not is_table(data):
        raise RltunerError(
            f"{path}: not a TensorFlow checkpoint (no table footer) nor a Magenta bundle; "
            f"expected a .mag file, a checkpoint (NAME.index, NAME, V1 file) or its folder"
        )
    return checkpoint_from_table(path, data)


def checkpoint_from_table(path: Path, data: bytes) -> Checkpoint:
    """A single table file: a V1 checkpoint (a V2 index alone has no weights)."""
    try:
        first = next(_table(memoryview(data)), None)
    except _Corrupt as err:
        raise RltunerError(f"{path}: not a readable TensorFlow checkpoint ({err})") from None
    if first is not None and first[0] == b"":
        kinds = {w for _, w, _ in _safe_fields(first[1])}
        if kinds == {0}:
            raise RltunerError(
                f"{path}: a V2 checkpoint index; pass it with its NAME.data-* files beside it"
            )
    return _open_v1(path, data)


def _safe_fields(buf: memoryview) -> list:
    try:
        return list(_fields(buf))
    except _Corrupt:
        return []


# ---------------------------------------------------------------------- Magenta bundles
@dataclass(frozen=True)
class MagentaBundle:
    """A decoded ``GeneratorBundle`` (``.mag``)."""

    generator_id: str
    generator_description: str
    bundle_description: str
    checkpoint_files: tuple[bytes, ...]
    has_metagraph: bool


def read_bundle(path: str | Path, data: bytes | None = None) -> MagentaBundle:
    """Decode a Magenta ``.mag`` file. Raises :class:`RltunerError` when it is not one."""
    path = Path(path)
    data = _read_file(path, "Magenta bundle") if data is None else data
    gen_id = gen_desc = bundle_desc = ""
    ckpts: list[bytes] = []
    has_meta, has_details = False, False
    try:
        for number, wire, v in _fields(memoryview(data)):
            if wire != 2:
                raise _Corrupt(f"field {number} has wire type {wire}, not a GeneratorBundle's")
            if number == 1:
                has_details = True
                for n2, w2, x in _fields(v):
                    if w2 == 2 and n2 in (1, 2):
                        text = bytes(x).decode("utf-8")
                        gen_id, gen_desc = (text, gen_desc) if n2 == 1 else (gen_id, text)
            elif number == 2:
                ckpts.append(bytes(v))
            elif number == 3:
                has_meta = True
            elif number == 4:
                for n2, w2, x in _fields(v):
                    if n2 == 1 and w2 == 2:
                        bundle_desc = bytes(x).decode("utf-8")
    except (_Corrupt, UnicodeDecodeError) as err:
        raise RltunerError(f"{path}: not a Magenta bundle (.mag) ({err})") from None
    if not has_details or not ckpts:
        raise RltunerError(
            f"{path}: not a Magenta bundle (.mag): no generator details or checkpoint inside"
        )
    return MagentaBundle(gen_id, gen_desc, bundle_desc, tuple(ckpts), has_meta)

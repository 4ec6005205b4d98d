"""Reading and writing `.safetensors` files (the Hugging Face format timm's weights come in) with numpy alone.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
byte range, then the raw bytes: nothing in it can run code. Written out here rather than taken from the
`safetensors` package because its numpy reader has no bfloat16, which some hub files use, and so that
users who never load timm weights install nothing for it.
"""

import json
import math
import pathlib
import struct

import numpy as np

from model_parts.checkpoint import CheckpointError, first_line

# safetensors dtype -> numpy; BF16 stays 2-byte records that `checkpoint.assign` widens to float32 exactly
DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("V2"),
          "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
          "U8": np.dtype("u1"), "BOOL": np.dtype("?")}
NAMES = {dtype: name for name, dtype in DTYPES.items() if name != "BF16"}
MAGIC_LIMIT = 100_000_000  # a header longer than this is not a safetensors header


def read_safetensors(path):
    """(arrays by name, the header's __metadata__ dict) of a .safetensors file, or a CheckpointError naming what
    is wrong with it. Every field of the header is checked, as the reference reader checks it: each tensor's
    dtype, shape (whole numbers, at least 0) and byte range (whole numbers, inside the data, as long as its shape
    and dtype need), and the ranges tile the data exactly: no two tensors share a byte, and none is left over."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    damaged = f"{path} is not a readable .safetensors file"
    if len(data) < 8 or not 2 <= struct.unpack("<Q", data[:8])[0] <= min(MAGIC_LIMIT, len(data) - 8):
        raise CheckpointError(f"{damaged} (no safetensors header: the length it states does not fit the file; "
                              "truncated, or another format)")
    size = struct.unpack("<Q", data[:8])[0]
    try:
        header = json.loads(data[8:8 + size].decode("utf-8"), object_pairs_hook=_without_repeats)
    except _RepeatedName as repeated:
        raise CheckpointError(f"{damaged} (its header names {repeated} twice)") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # RecursionError: nested past Python's limit
        raise CheckpointError(f"{damaged} (its header is not JSON: {first_line(error)})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{damaged} (its header is not a table of tensors)")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata  # null: none, as the reference reader takes it
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise CheckpointError(f"{damaged} (its __metadata__ is not a table of texts)")
    body = memoryview(data)[8 + size:]
    arrays, spans = {}, []
    for name, entry in header.items():
        dtype, shape, (begin, end) = _checked_entry(name, entry, len(body), damaged)
        try:
            arrays[name] = np.frombuffer(body[begin:end], dtype).reshape(shape)
        except (ValueError, OverflowError):  # a side past numpy's limits (the bytes fit: another side is 0)
            raise CheckpointError(f"{damaged} ({name}: shape {list(shape)} is too large for numpy)") from None
        spans.append((begin, end, name))
    covered, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin < covered:
            raise CheckpointError(f"{damaged} ({name} and {previous} share bytes {begin}-{min(end, covered)} of its "
                                  "data; each tensor has bytes of its own)")
        if begin > covered:
            raise CheckpointError(f"{damaged} (bytes {covered}-{begin} of its data belong to no tensor)")
        covered, previous = end, name
    if covered != len(body):
        raise CheckpointError(f"{damaged} (bytes {covered}-{len(body)} of its data belong to no tensor)")
    return arrays, metadata


class _RepeatedName(Exception):
    """A JSON object that names one key twice (json.loads would keep the last silently)."""


def _without_repeats(pairs):
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise _RepeatedName(next(name for name in names if names.count(name) > 1))
    return dict(pairs)


def _checked_entry(name, entry, data_size, damaged):
    """(numpy dtype, shape, (begin, end)) of one header entry, or a CheckpointError naming what is wrong."""
    whole = lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0  # noqa: E731
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise CheckpointError(f"{damaged} ({name}: not an entry of dtype, shape and data_offsets)")
    kind, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(kind, str) or kind not in DTYPES:
        raise CheckpointError(f"{damaged} ({name}: dtype {json.dumps(kind)[:40]} is not read here; "
                              f"known: {', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(whole(side) for side in shape):
        raise CheckpointError(f"{damaged} ({name}: shape {json.dumps(shape)[:60]} is not a list of whole numbers "
                              "of at least 0)")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(whole(offset) for offset in offsets) \
            or offsets[0] > offsets[1]:
        raise CheckpointError(f"{damaged} ({name}: data_offsets {json.dumps(offsets)[:60]} are not [begin, end] "
                              "in whole bytes, begin at most end)")
    begin, end = offsets
    if end > data_size:
        raise CheckpointError(f"{damaged} ({name}: its bytes {begin}-{end} lie past the end of its data, "
                              f"{data_size} bytes; truncated or damaged)")
    if end - begin != DTYPES[kind].itemsize * math.prod(shape):  # Python's integers: no overflow
        raise CheckpointError(f"{damaged} ({name}: its bytes {begin}-{end} do not fit shape {shape} of {kind}; "
                              "damaged)")
    return DTYPES[kind], tuple(shape), (begin, end)


def write_safetensors(path, arrays, metadata=None):
    """Writes numpy arrays (float32, float16, integers) as a .safetensors file with string `metadata`."""
    header, offset = {}, 0
    for name, array in arrays.items():
        array = np.asarray(array)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        header[name] = {"dtype": NAMES[np.dtype(dtype)], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    if metadata:
        header["__metadata__"] = {str(key): str(value) for key, value in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the tensors start 8-byte aligned, as the reference writer does
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)) + encoded)
        for array in arrays.values():
            file.write(np.ascontiguousarray(array, dtype=np.asarray(array).dtype.newbyteorder("<")).tobytes())

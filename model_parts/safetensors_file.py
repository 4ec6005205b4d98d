"""Reading and writing `.safetensors` files (the Hugging Face format timm's weights come in) with numpy alone.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
byte range, then the raw bytes: nothing in it can run code. Written out here rather than taken from the
`safetensors` package because its numpy reader has no bfloat16, which some hub files use, and so that
users who never load timm weights install nothing for it.
"""

import json
import pathlib
import struct

import numpy as np

from model_parts.checkpoint import CheckpointError

# safetensors dtype -> numpy; BF16 stays 2-byte records that `checkpoint.assign` widens to float32 exactly
DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("V2"),
          "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
          "U8": np.dtype("u1"), "BOOL": np.dtype("?")}
NAMES = {dtype: name for name, dtype in DTYPES.items() if name != "BF16"}
MAGIC_LIMIT = 100_000_000  # a header longer than this is not a safetensors header


def read_safetensors(path):
    """(arrays by name, the header's __metadata__ dict) of a .safetensors file, or a CheckpointError naming what
    is wrong with it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    damaged = f"{path} is not a readable .safetensors file"
    if len(data) < 8 or not 2 <= struct.unpack("<Q", data[:8])[0] <= min(MAGIC_LIMIT, len(data) - 8):
        raise CheckpointError(f"{damaged} (no safetensors header: truncated, or another format)")
    size = struct.unpack("<Q", data[:8])[0]
    try:
        header = json.loads(data[8:8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{damaged} (its header is not JSON: {error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{damaged} (its header is not a table of tensors)")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + size:]
    arrays = {}
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = DTYPES[entry["dtype"]], tuple(entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            kind = entry.get("dtype") if isinstance(entry, dict) else None
            raise CheckpointError(f"{damaged} ({name}: " + (f"dtype {kind} is not read here)" if kind else
                                                             "a malformed entry)")) from None
        if not (0 <= begin <= end <= len(body)) or end - begin != dtype.itemsize * int(np.prod(shape)):
            raise CheckpointError(f"{damaged} ({name}: its bytes {begin}-{end} do not fit shape {list(shape)} "
                                  f"of {entry['dtype']}; truncated or damaged)")
        arrays[name] = np.frombuffer(body[begin:end], dtype).reshape(shape)
    return arrays, metadata


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

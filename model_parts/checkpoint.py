"""The loading design every checkpoint format here follows (ViT and hybrid in `vit_tf.checkpoint`, BiT in
`cnn_baseline.checkpoint`): read the file without pickle, checking every field it states (JSON types, ranges,
byte offsets: a file that lies is refused, never half-read), list the assignments (our variable <- a key,
with the layout conversion), check them as a whole before any weight is set (every key used exactly
once or deliberately dropped, every weight set, the first key or shape that does not fit named), then
set them and report what was loaded.

Uses numpy only; both model packages import it, and it imports neither.
"""

import dataclasses
import hashlib
import json
import pathlib
import re
import zipfile
import zlib

import numpy as np

PREFIXES = ("params/", "opt/target/")  # where Linen and big_vision training states keep the weights


class CheckpointError(ValueError):
    """A file that is not a checkpoint, or not one of this model: the message names what does not fit."""


@dataclasses.dataclass
class LoadReport:
    path: str
    sha256: str
    loaded_keys: int
    dropped: list  # checkpoint keys deliberately not loaded (a pre-training head)
    position_grid: tuple = None  # (checkpoint grid side, model grid side); None for a CNN
    reinitialised: list = dataclasses.field(default_factory=list)  # model layers the file has no weights for
    widened: list = dataclasses.field(default_factory=list)  # keys stored as bfloat16, loaded as float32
    notes: list = dataclasses.field(default_factory=list)  # how the file was converted (timm's layout)

    @property
    def interpolated(self):
        return self.position_grid is not None and self.position_grid[0] != self.position_grid[1]

    def describe(self):
        lines = [f"loaded {self.loaded_keys} arrays from {pathlib.Path(self.path).name} (sha256 {self.sha256[:12]}...)"]
        lines += self.notes
        if self.dropped:
            lines.append(f"dropped the pre-training head ({', '.join(sorted(self.dropped))}); the new head starts "
                         "at zero, as in the paper's fine-tuning")
        if self.widened:
            lines.append(f"converted {len(self.widened)} bfloat16 arrays to float32 (exactly: bfloat16 is float32 with "
                         "a shorter mantissa)")
        if self.reinitialised:
            lines.append(f"not in the file, so freshly initialised: {', '.join(self.reinitialised)}")
        if self.interpolated:
            old, new = self.position_grid
            lines.append(f"position embeddings interpolated from a {old}x{old} to a {new}x{new} patch grid "
                         "(2-D bilinear, corners aligned, class-token row kept), as the authors do")
        return lines


def read_npz(path):
    """The arrays of an .npz file, loaded without pickle; a CheckpointError for anything else."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as file:
        magic = file.read(6)
    if not magic.startswith(b"PK"):  # an .npz is a zip archive of .npy files
        kind = "a single .npy array" if magic == b"\x93NUMPY" else "not an .npz file"
        raise CheckpointError(f"{path} is {kind}; a released checkpoint is an .npz of named arrays")
    try:
        with np.load(path, allow_pickle=False) as opened:
            arrays = {key: opened[key] for key in opened.files}
    except ValueError as error:
        if "allow_pickle" in str(error):  # numpy refuses object arrays without pickle
            raise CheckpointError(f"{path} holds pickled Python objects, which are not loaded ({error})") from None
        raise CheckpointError(f"{path} is not a readable .npz checkpoint (damaged: {first_line(error)})") from None
    # what zipfile, zlib and numpy raise for a damaged archive or an array header that lies about its size
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, MemoryError, NotImplementedError,
            RuntimeError) as error:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint (truncated or damaged: "
                              f"{first_line(error)})") from None
    other = next((key for key, value in arrays.items() if not isinstance(value, np.ndarray)), None)
    if other is not None:  # numpy returns a member that is not an .npy file as its bytes
        raise CheckpointError(f"{path} holds {other}, which is not a numpy array; a checkpoint holds only arrays")
    return arrays


def first_line(error):
    """An exception's message cut to one line (a library's may run to many), or its type's name if it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


JSON_KINDS = {int: "a whole number", str: "text", bool: "true or false", dict: "a table", list: "a list"}


def json_field(table, name, kind, where, minimum=None, required=False):
    """table[name], a field of a JSON file a checkpoint comes with, once it has the JSON type `kind` (true and
    false are not numbers) and is at least `minimum`; None where it is absent or null, unless `required`. A
    CheckpointError names the field, what it holds and `where` it is."""
    value = table.get(name)
    if value is None:
        if required:
            raise CheckpointError(f"{where} has no {name}")
        return None
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise CheckpointError(f"{where} gives {name} as {json.dumps(value)[:60]}, not {JSON_KINDS[kind]}")
    if minimum is not None and value < minimum:
        raise CheckpointError(f"{where} gives {name} as {value}; it must be at least {minimum}")
    return value


def shape_of(arrays, key, ndim, path, layout):
    """The shape of arrays[key] once it has `ndim` axes, the released `layout` (e.g. "(D, heads, D_h)")."""
    shape = arrays[key].shape
    if len(shape) != ndim:
        raise CheckpointError(f"{path}: {key} has shape {shape}; the released layout is {layout}")
    return shape


def strip_prefix(arrays, prefix):
    """The arrays with `prefix` removed from their keys, if every key starts with it."""
    if arrays and all(key.startswith(prefix) for key in arrays):
        return {key[len(prefix):]: value for key, value in arrays.items()}
    return arrays


def normalise_keys(arrays, path="the checkpoint"):
    """Strips a training-state prefix and splits blocks stacked along a leading layer axis."""
    for prefix in PREFIXES:
        arrays = strip_prefix(arrays, prefix)
    stacked = "Transformer/encoderblock/"
    if not any(key.startswith(stacked) for key in arrays):
        return arrays
    flat = {key: value for key, value in arrays.items() if not key.startswith(stacked)}
    for key, value in arrays.items():
        if key.startswith(stacked):
            if value.ndim == 0:
                raise CheckpointError(f"{path}: {key} holds one number, not blocks stacked along a first axis")
            for index, part in enumerate(value):
                name = f"Transformer/encoderblock_{index}/{key[len(stacked):]}"
                if name in flat:  # the file has the block both stacked and on its own: which one is meant?
                    raise CheckpointError(f"{path} has {name} both on its own and in {key}; which one to load is "
                                          "unclear")
                flat[name] = part
    return flat


def assign(assignments, arrays, dropped, path):
    """Sets every variable from its key, or raises before setting any.

    assignments: (variable, candidate keys, convert); exactly one candidate must be in the file.
    dropped: keys deliberately not loaded. Every other key must be used exactly once.
    Returns the keys used, and those widened from bfloat16.
    """
    values, used, widened = [], set(), []
    for variable, candidates, convert in assignments:
        present = [key for key in candidates if key in arrays]
        if not present:
            raise CheckpointError(f"{path} has no {candidates[0]} (for {variable.path}); it is not a checkpoint of "
                                  "this model, or it is damaged")
        if len(present) > 1:
            raise CheckpointError(f"{path} has both {present[0]} and {present[1]}; which one to load is unclear")
        key = present[0]
        if key in used:
            raise CheckpointError(f"{key} would be loaded twice")
        stored = arrays[key]
        if stored.dtype.kind == "V" and stored.dtype.itemsize == 2:  # bfloat16, which numpy has no type for
            stored = bfloat16_to_float32(stored)
            widened.append(key)
        elif stored.dtype.kind not in "fiu":
            raise CheckpointError(f"{key} is stored as {stored.dtype}, not as numbers this loader reads (float32, "
                                  "float16 or bfloat16)")
        misfit = CheckpointError(f"{key} has shape {arrays[key].shape}, which does not fit {variable.path} "
                                 f"{tuple(variable.shape)}")
        try:
            value = np.asarray(convert(stored))
        except CheckpointError:
            raise
        except (ValueError, IndexError, TypeError):  # a reshape or transpose the stored shape does not allow
            raise misfit from None
        if tuple(value.shape) != tuple(variable.shape):
            raise misfit
        with np.errstate(over="ignore"):  # a float64 past float32's range becomes inf, refused below
            value = value.astype(variable.dtype, copy=False)
        if not np.isfinite(value).all():  # damaged bytes: no released weight is NaN or infinite
            raise CheckpointError(f"{path}: {key} holds NaN or infinite values (or numbers past float32's range); "
                                  "the file is damaged")
        values.append((variable, value))
        used.add(key)
    extra = sorted(set(arrays) - used - set(dropped))
    if extra:
        raise CheckpointError(f"{path} has {len(extra)} array(s) this model has no place for, e.g. {extra[0]}; "
                              "is it a checkpoint of another model?")
    for variable, value in values:
        variable.assign(value)
    return used, widened


def bfloat16_to_float32(array):
    """bfloat16 values (2-byte records: numpy reads them as void) as float32: the same number, exactly, since
    bfloat16 is float32 with the low 16 bits of the mantissa cut off."""
    bits = np.ascontiguousarray(array).view(np.uint16).astype(np.uint32) << 16
    return bits.view(np.float32)


def load_and_report(assignments, arrays, dropped, path, new_head=()):
    """Every loader's last step: sets the weights (`assign`), starts the `new_head` variables at zero, as
    the paper and BiT fine-tune, and returns the LoadReport."""
    used, widened = assign(assignments, arrays, dropped, path)
    for variable in new_head:
        variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
    digest = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
    return LoadReport(str(path), digest, len(used), dropped, widened=widened)


def units_per_stage(keys, pattern):
    """(units of stage 1, of stage 2, ...) from keys that `pattern` matches with (stage, unit) groups."""
    units = {}
    for key in keys:
        match = re.match(pattern, key)
        if match:
            units.setdefault(int(match.group(1)), set()).add(match.group(2))
    return tuple(len(units[stage]) for stage in sorted(units))


def compare_architectures(found, ours, path, presets, kind, option):
    """A CheckpointError naming what differs, and the options (`option(name, row)`) of a preset of `presets`
    that fits the file, if one does."""
    columns = list(found)
    plain = lambda value: tuple(value) if isinstance(value, (list, tuple)) else value  # noqa: E731  (JSON lists)
    ours = {column: plain(ours.get(column)) for column in columns}
    if found == ours:
        return
    matching = [name for name, row in presets.items() if all(plain(row.get(c)) == found[c] for c in columns)]
    hint = f"; use {option(matching[0], presets[matching[0]])}" if matching else ""
    describe = lambda row: ", ".join(f"{c} {row[c]}" for c in columns if row[c] is not None) or "no ResNet stem"  # noqa: E731
    raise CheckpointError(f"{path} holds a {kind} with {describe(found)}, but the model has {describe(ours)}{hint}")

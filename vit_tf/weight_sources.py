"""Where a checkpoint file comes from, told by its name: plain Python, so the command lines can ask before Keras
loads. The authors' `.npz`, timm's state dicts, keras-hub's preset weights; the last two were trained with the
exact GELU (the authors': its tanh approximation)."""

import pathlib

TIMM_SUFFIXES = (".safetensors", ".pth", ".bin", ".pt")


def source_of(path):
    """"timm", "keras-hub" or "authors" (an .npz, or anything else, which the .npz reader then names)."""
    name = pathlib.Path(path).name
    if name.endswith(TIMM_SUFFIXES):
        return "timm"
    if name.endswith(".h5") or is_keras_hub_preset(path):
        return "keras-hub"
    return "authors"


def is_keras_hub_preset(path):
    """A keras-hub preset folder (`backbone.save_to_preset(folder)`): its config.json and model.weights.h5."""
    path = pathlib.Path(path)
    return path.is_dir() and (path / "config.json").is_file() and (path / "model.weights.h5").is_file()


def checkpoint_file(path):
    """The file to read: a keras-hub preset folder's model.weights.h5, else `path` itself."""
    path = pathlib.Path(path)
    return path / "model.weights.h5" if is_keras_hub_preset(path) else path


def uses_exact_gelu(path):
    return source_of(path) in ("timm", "keras-hub")

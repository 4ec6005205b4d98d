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
    if name.endswith(".h5"):
        return "keras-hub"
    return "authors"


def uses_exact_gelu(path):
    return source_of(path) in ("timm", "keras-hub")

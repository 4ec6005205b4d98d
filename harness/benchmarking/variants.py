"""What benchmark.py can measure, named "KIND:PRESET"; plain Python, checked before Keras loads."""

import importlib.util

from harness.errors import UserError
from harness.models import MODEL_FAMILIES

# baseline: the straightforward Keras ViT of a vit preset's size; peers: keras-hub's and timm's ViTs of that size
PEER_MODULES = {"keras-hub": "keras_hub", "timm": "timm", "timm-compile": "timm"}  # harness/benchmarking/peers.py
PEER_KINDS = tuple(PEER_MODULES)
KINDS = ("vit", "hybrid", "cnn", "baseline", *PEER_KINDS)
NAN_GUARDS = ("async", "sync")  # how the NaN guard reads the loss (harness.benchmarking.run)


def parse_variant(text):
    """"vit:vit_cifar_tiny" -> ("vit", "vit_cifar_tiny"); "cnn" -> ("cnn", its default preset)."""
    kind, _, preset = text.partition(":")
    if kind not in KINDS:
        raise UserError(f"unknown model kind {kind!r} in {text!r}; use vit:PRESET, hybrid:PRESET, cnn:PRESET, "
                        f"baseline:PRESET or a peer ({', '.join(PEER_KINDS)}):PRESET")
    family = MODEL_FAMILIES["vit" if kind == "baseline" or kind in PEER_KINDS else kind]
    preset = preset or family.default_preset
    if preset not in family.presets:
        raise UserError(f"unknown preset {preset!r} in {text!r}; choose one of: {', '.join(family.presets)}")
    return kind, preset


def missing_peer(kind):
    """The line to print when the peer `kind` is not installed, else None."""
    if importlib.util.find_spec(PEER_MODULES[kind]) is None:
        return f"skipping {kind}: {PEER_MODULES[kind]} is not installed (pip install -r requirements-peers.txt)"
    return None


def peer_backend(kind):
    """The Keras backend a peer's process starts: timm's runs on PyTorch anyway."""
    return "torch" if PEER_MODULES.get(kind) == "timm" else None

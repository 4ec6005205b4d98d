"""What benchmark.py can measure, named "KIND:PRESET"; plain Python, checked before Keras loads."""

import dataclasses
import importlib.util

from harness.errors import UserError
from harness.models import MODEL_FAMILIES

# baseline: the straightforward Keras ViT of a vit preset's size; peers (harness/benchmarking/peers.py): keras-hub's
# and timm's ViTs of a vit preset's size, timm's ResNet-v2 of a cnn preset's
PEER_MODULES = {"keras-hub": "keras_hub", "timm": "timm", "timm-compile": "timm"}
PEER_KINDS = tuple(PEER_MODULES)
PEER_FAMILIES = {"keras-hub": ("vit",), "timm": ("vit", "cnn"), "timm-compile": ("vit", "cnn")}
KINDS = ("vit", "hybrid", "cnn", "baseline", *PEER_KINDS)


@dataclasses.dataclass(frozen=True)
class RowSettings:
    """How one row is measured: benchmark.py's options, as its process (harness/benchmarking/one.py) gets them."""

    batch_size: int
    warmup_steps: int  # untimed training steps first, compilation included
    steps: int  # timed training steps
    precision: str = "auto"  # as train.py --precision
    jit_compile: str = "auto"  # ours, as train.py --jit-compile
    devices: str = "1"  # ours: data-parallel devices, the batch being global
    mixing: str = "none"  # ours: MixUp or CutMix in the input pipeline
    data_on_device: str = "auto"  # ours: batches made on the accelerator (JAX) or sent from host memory
    augmentation: str = "crop_flip"  # ours: in the model; none times ours as the peers are timed
    gelu: str | None = None  # ours: the ViT's MLP activation; None: train.py's default (a CNN has none)
    num_classes: int = 10


def parse_variant(text):
    """"vit:vit_cifar_tiny" -> ("vit", "vit_cifar_tiny"); "cnn" -> ("cnn", its default preset)."""
    kind, _, preset = text.partition(":")
    if kind not in KINDS:
        raise UserError(f"unknown model kind {kind!r} in {text!r}; use vit:PRESET, hybrid:PRESET, cnn:PRESET, "
                        f"baseline:PRESET or a peer ({', '.join(PEER_KINDS)}):PRESET")
    families = [MODEL_FAMILIES[name] for name in PEER_FAMILIES.get(kind, ["vit" if kind == "baseline" else kind])]
    preset = preset or families[0].default_preset
    if not any(preset in family.presets for family in families):
        known = [name for family in families for name in family.presets]
        raise UserError(f"unknown preset {preset!r} in {text!r}; choose one of: {', '.join(known)}")
    return kind, preset


def peer_rows(kinds, measured):
    """The peers' rows ("timm:resnet20") for our measured variants ("cnn:resnet20"), and a line for each
    peer that has nothing of that family or is not installed."""
    rows, skipped = [], []
    for kind in kinds:
        if line := missing_peer(kind):
            skipped.append(line)
            continue
        for family, preset in map(parse_variant, measured):
            if family in PEER_FAMILIES[kind]:
                rows.append(f"{kind}:{preset}")
            elif family == "cnn":
                skipped.append(f"skipping {kind}:{preset}: keras-hub's ResNetBackbone always starts with ImageNet's "
                               "4x-downsampling stem, so it has no CIFAR ResNet of this size")
    return rows, skipped


def missing_peer(kind):
    """The line to print when the peer `kind` is not installed, else None."""
    if importlib.util.find_spec(PEER_MODULES[kind]) is None:
        return f"skipping {kind}: {PEER_MODULES[kind]} is not installed (pip install -r requirements-peers.txt)"
    return None


def peer_backend(kind):
    """The Keras backend a peer's process starts: timm's runs on PyTorch anyway."""
    return "torch" if PEER_MODULES.get(kind) == "timm" else None

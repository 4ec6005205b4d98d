"""What benchmark.py can measure, named "KIND:PRESET"; plain Python, checked before Keras loads."""

from harness.errors import UserError
from harness.models import MODEL_FAMILIES

KINDS = ("vit", "hybrid", "cnn", "baseline")  # baseline: the straightforward Keras ViT of a vit preset's size
NAN_GUARDS = ("async", "sync")  # how the NaN guard reads the loss (harness.benchmarking.run)


def parse_variant(text):
    """"vit:vit_cifar_tiny" -> ("vit", "vit_cifar_tiny"); "cnn" -> ("cnn", its default preset)."""
    kind, _, preset = text.partition(":")
    if kind not in KINDS:
        raise UserError(f"unknown model kind {kind!r} in {text!r}; use vit:PRESET, hybrid:PRESET, cnn:PRESET or "
                        "baseline:PRESET")
    family = MODEL_FAMILIES["vit" if kind == "baseline" else kind]
    preset = preset or family.default_preset
    if preset not in family.presets:
        raise UserError(f"unknown preset {preset!r} in {text!r}; choose one of: {', '.join(family.presets)}")
    return kind, preset

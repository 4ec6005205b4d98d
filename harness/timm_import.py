"""timm, imported where this project uses it (benchmark.py --peers, evaluate.py --format timm, the tests)."""

import sys

_torchvision_declarations = None  # kept alive: a torch.library.Library unregisters what it declared when freed


def import_timm():
    """timm, whose import loads torchvision. A torchvision built for another torch (PyPI's is built for CUDA's;
    beside a CPU torch) cannot load its compiled operators, and its import fails on the first it names; timm's
    ViT uses none of them, so they are declared (without an implementation) and the import tried again."""
    global _torchvision_declarations
    try:
        import timm
    except RuntimeError as error:
        if "torchvision::" not in str(error):
            raise
        import torch

        for name in [name for name in sys.modules if name.split(".")[0] in ("torchvision", "timm")]:
            del sys.modules[name]
        _torchvision_declarations = torch.library.Library("torchvision", "DEF")
        for operator in ("nms", "qnms"):  # the two torchvision's import names unconditionally
            _torchvision_declarations.define(f"{operator}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import timm
    return timm

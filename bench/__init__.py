"""Speed measurements: `benchmark.py` and the straightforward baseline ViT it is compared with."""

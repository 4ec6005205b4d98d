#!/usr/bin/env bash
# What the GPU machine (Python 3.12, JAX; no Keras, no TensorFlow, no internet) needs brought along, once:
# the pinned Keras with its pure-Python dependencies, keras-hub with the two it imports (for the campaign's
# side-by-side table beside keras-hub's ViT; timm needs PyTorch, which that machine lacks), and the CIFAR-10
# archive. Neither is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d .whl \
    keras==3.15.1 namex==0.1.0 optree==0.20.0 tqdm==4.70.1 absl-py==2.5.1 rich==15.0.0 markdown-it-py==4.3.0 \
    mdurl==0.1.2 pygments==2.21.0 typing_extensions==4.16.0 keras-hub==0.32.0 regex==2026.11.19 tokenizers==0.23.3
mkdir -p .gpu
cp "${CIFAR_ARCHIVE:-../shared/datasets/cifar10-jpeg.tar.gz}" .gpu/
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || echo "/.gpu/" >> .git/info/exclude
ls .whl .gpu

"""One training step of every preset at odd and even batch sizes, on the CPU, in this process.

Run by tests/test_native_crash.py as a subprocess: a native crash (a oneDNN kernel corrupting the
heap for some shapes) kills the process, which the test sees as its exit code. Prints one line per
combination, so the last line names the one that crashed.

For time, each model is cut to the fewest blocks that still hold every distinct layer shape: one
ViT block (all blocks are alike), one residual block per ResNet stage (the first block of a stage is
the one whose shape changes). The plain ViT has no convolution at all (its patch embedding is a matrix
product), the kind of kernel that crashed: only its CIFAR-sized presets take their steps here, the paper's
sizes differ from them in widths alone. The hybrids' paper sizes run at 2 x 2 tokens. Only the CNNs, whose
narrow presets have strided 1x1 convolutions of fewer than 16 channels, take every odd batch size; the
others take one. Each step runs eagerly: the kernels are those of the compiled step (a step with the
crashing convolution put back crashes eagerly too), without tracing a graph per preset. Arguments: the
model families to probe (default: all).
"""

import sys

import numpy as np

from harness import backend

backend.start()

from harness.models import MODEL_FAMILIES  # noqa: E402
from harness.training.config import TrainConfig  # noqa: E402
from harness.training.trainer import training_model  # noqa: E402
from vit_tf.presets import DEFAULT_OPTIONS, pixels_per_token  # noqa: E402

SMALL_BATCHES = (1, 65)  # odd sizes set off the oneDNN bug; 65 as in the original report
ONE_BATCH = (65,)
PAPER_BATCHES = (3,)


def combinations(families):
    for name in families:
        for preset, row in MODEL_FAMILIES[name].presets.items():
            paper_sized = row.get("image_size", 32) > 32
            if name == "vit" and paper_sized:
                continue
            if name == "cnn":  # one block per stage; BiT's 224 px presets at 32 px (its stages end at 1x1)
                blocks = row.get("blocks_per_stage")  # the fast CNN has none
                overrides = dict(blocks_per_stage=(1,) * len(blocks)) if blocks else {}
                if paper_sized:
                    overrides.update(image_size=32)
            else:  # one encoder block (and one unit per stem stage); paper sizes at two tokens per side
                overrides = dict(num_layers=1)
                if row.get("resnet_blocks"):
                    overrides.update(resnet_blocks=(1,) * len(row["resnet_blocks"]))
                if paper_sized:
                    overrides.update(image_size=2 * pixels_per_token({**DEFAULT_OPTIONS, **row}))
            for batch_size in PAPER_BATCHES if paper_sized else SMALL_BATCHES if name == "cnn" else ONE_BATCH:
                yield name, preset, batch_size, overrides


def main(families):
    rng = np.random.default_rng(0)
    for name, preset, batch_size, overrides in combinations(families or list(MODEL_FAMILIES)):
        family = MODEL_FAMILIES[name]
        config = TrainConfig(model=name, preset=preset, epochs=1, batch_size=batch_size).with_recipe_defaults(preset)
        model = family.build(preset, num_classes=10, **overrides)
        trainee = training_model(model, config, steps_per_epoch=1)
        trainee.run_eagerly = True  # the same kernels as the compiled step, without seconds of tracing per preset
        size = model.input_shape[1]
        images = rng.integers(0, 256, (batch_size, size, size, 3)).astype("float32")
        labels = np.eye(10, dtype="float32")[rng.integers(0, 10, batch_size)]
        loss = trainee.train_on_batch(images, labels)
        print(f"{name} {preset} batch {batch_size}: loss {float(np.ravel(loss)[0]):.3f}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

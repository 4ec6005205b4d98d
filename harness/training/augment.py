"""Training-time augmentation: per-image layers inside the model graph, batch mixing in the input pipeline.

Per-image augmentation (shift, flip) runs as the first layers of the *training* model, so it runs on
the accelerator, compiles with the rest of the step (XLA/jit) and never holds up the input pipeline;
at inference those layers are inactive, and the saved model is the plain one. MixUp and CutMix mix
labels as well as images, so they stay in the input pipeline, as Keras' own layers.
"""

import keras
import numpy as np
from keras import layers, ops

from harness.training.config import AUGMENTATIONS, MIXINGS

CIFAR_SHIFT = 4  # pixels: pad by 4 and crop back, the standard CIFAR augmentation
SMALL_SHIFT = 2  # pixels, edges reflected: airbench's translation (Jordan 2024), for short runs
FILLS = ("zeros", "reflect")


@keras.saving.register_keras_serializable(package="harness")
class RandomShift(layers.Layer):
    """Moves each image by a random whole number of pixels, up to `max_shift` each way.

    The same as padding by `max_shift` (`fill` "zeros", or "reflect": mirrored about the edge pixel, as
    NumPy's and PyTorch's "reflect") and cropping back at a random place. Written as two one-hot selection
    matrices, out[i, j] = in[source(i - dy), source(j - dx)], so it is plain keras.ops, compiles under XLA
    and jit, and is exact. (Keras' RandomTranslation and RandomCrop disable jit.)
    """

    def __init__(self, max_shift=CIFAR_SHIFT, fill="zeros", seed=None, **kwargs):
        super().__init__(**kwargs)
        if fill not in FILLS:
            raise ValueError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")
        self.max_shift = max_shift
        self.fill = fill
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _selection(self, shifts, size, dtype):
        """(B,) shifts -> (B, size, size) matrices S with S[b, i, p] = 1 where p = i - shift_b (reflected back
        inside for "reflect"; for "zeros" a row whose p falls outside stays zero)."""
        source = ops.arange(size)[None, :] - shifts[:, None]  # (B, size)
        if self.fill == "reflect":
            source = ops.abs(source)  # -1 -> 1, -2 -> 2
            source = ops.where(source > size - 1, 2 * (size - 1) - source, source)  # size -> size - 2
        return ops.cast(ops.equal(source[:, :, None], ops.arange(size)[None, None, :]), dtype)

    def call(self, images, training=None):
        if not training or self.max_shift == 0:
            return images
        batch_size = ops.shape(images)[0]
        shifts = keras.random.randint((2, batch_size), -self.max_shift, self.max_shift + 1,
                                      seed=self.seed_generator)
        rows = self._selection(shifts[0], images.shape[1], images.dtype)
        cols = self._selection(shifts[1], images.shape[2], images.dtype)
        return ops.einsum("bip,bpqc,bjq->bijc", rows, images, cols)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_shift": self.max_shift, "fill": self.fill, "seed": self.seed}


# "randaugment": the DeiT family's per-image policy at CIFAR scale, with Keras' own layers. Two of
# RandAugment's operations at half strength, then random erasing of one box in a quarter of the images.
RANDAUGMENT_OPS = 2
RANDAUGMENT_STRENGTH = 0.5
ERASING_PROBABILITY = 0.25  # DeiT's


def build_augmentation(name, seed=None):
    """The per-image augmentation as a `keras.Sequential`, or None for "none".

    "crop_flip" is the standard CIFAR augmentation: a random shift of up to 4 pixels with zero fill
    (pad 4 and crop) and a horizontal flip. "shift2_flip" is airbench's lighter one for short runs: up to 2
    pixels, edges reflected, and the flip. "randaugment" adds Keras' RandAugment (Cubuk et al. 2020;
    Keras draws the operations once per batch and their magnitudes per image) and RandomErasing
    (Zhong et al. 2020), as DeiT and Lee et al.'s small-data ViTs train. Every layer runs in float32
    whatever the precision policy.
    """
    if name == "none":
        return None
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")
    shift = dict(max_shift=SMALL_SHIFT, fill="reflect") if name == "shift2_flip" else dict(max_shift=CIFAR_SHIFT)
    steps = [
        RandomShift(**shift, seed=seed, dtype="float32", name="random_shift"),
        layers.RandomFlip("horizontal", seed=seed, dtype="float32", name="random_flip"),
    ]
    if name == "randaugment":
        steps += [
            layers.RandAugment(value_range=(0, 255), num_ops=RANDAUGMENT_OPS, factor=RANDAUGMENT_STRENGTH, seed=seed,
                               dtype="float32", name="rand_augment"),
            layers.RandomErasing(factor=ERASING_PROBABILITY, value_range=(0, 255), seed=seed, dtype="float32",
                                 name="random_erasing"),
        ]
    return keras.Sequential(steps, name="augmentation")


def with_augmentation(model, augmentation):
    """The model to train: `augmentation` (active only in training) followed by `model`.

    Both share their weights, so training this one trains `model`, which is what gets saved.
    """
    if augmentation is None:
        return model
    images = keras.Input(model.input_shape[1:], name="images")
    return keras.Model(images, model(augmentation(images)), name=f"{model.name}_with_augmentation")


def reseed(augmentation, seed):
    """Restarts every random layer of `augmentation` from `seed`.

    Called at each epoch start with a seed drawn from (run seed, epoch), it makes an epoch's
    augmentation independent of the epochs before it, which exact resumption needs.
    """
    states = [v for v in augmentation.variables if v.name == "seed_generator_state"]
    for index, state in enumerate(states):
        state.assign(np.array([(seed + index) % 2**31, 0]).astype(state.dtype))


def build_mixing(name, alpha=1.0, seed=None):
    """Keras' MixUp or CutMix for batches given as {"images", "labels" (one-hot)}, or None.

    MixUp draws each image's weight from Beta(alpha, alpha); Keras' CutMix first draws its Beta
    parameter from U(0, alpha), then the pasted box's area from that Beta.
    """
    if name == "none":
        return None
    if seed is not None and keras.backend.backend() == "torch" and seed >= 2**31:
        seed -= 2**32  # the same 32 bits: PyTorch's backend keeps seeds as int32 (TensorFlow and JAX: uint32)
    # float32 whatever the precision policy: under mixed precision Keras' layers would mix in bfloat16
    # (pixels to 8 bits of mantissa; on TensorFlow, an error), and the model takes float32 images.
    if name == "mixup":
        return layers.MixUp(alpha=alpha, seed=seed, dtype="float32")
    if name == "cutmix":
        return layers.CutMix(factor=alpha, seed=seed, dtype="float32")
    raise ValueError(f"unknown mixing {name!r}; choose one of {', '.join(MIXINGS)}")

"""The input pipelines (tf.data and the TensorFlow-free one) and the augmentation layers."""

import keras
import numpy as np
import pytest

from harness.data import Split
from harness.training.array_pipeline import EvaluationBatches, TrainingBatches
from harness.training.augment import RandomShift, build_augmentation, build_mixing, with_augmentation
from harness.training.tf_pipeline import make_dataset, make_training_dataset


def small_split(count=10, seed=0):
    rng = np.random.default_rng(seed)
    return Split(rng.integers(1, 256, (count, 32, 32, 3)), np.arange(count) % 3)


def test_evaluation_batches_keep_order_pixels_and_one_hot_labels():
    split = small_split()
    batches = list(make_dataset(split, num_classes=3, batch_size=4))
    assert [len(x) for x, _ in batches] == [4, 4, 2]  # nothing dropped outside training
    images = np.concatenate([x.numpy() for x, _ in batches])
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, split.images)  # same as the arrays, no scaling
    np.testing.assert_array_equal(labels, np.eye(3)[split.labels])


def epochs_of(dataset, steps):
    batches = [x.numpy() for x, _ in dataset]
    return [np.concatenate(batches[i : i + steps]) for i in range(0, len(batches), steps)]


def test_training_batches_are_reshuffled_each_epoch_and_full():
    split = small_split()
    epochs = epochs_of(make_training_dataset(split, num_classes=3, batch_size=4, epochs=range(2), seed=0), steps=2)
    assert len(epochs) == 2 and all(len(epoch) == 8 for epoch in epochs)  # the partial batch is dropped
    assert not np.array_equal(epochs[0], epochs[1])
    originals = {image.tobytes() for image in split.images.astype(np.float32)}
    assert all(image.tobytes() in originals for image in epochs[0])


def test_every_tf_data_pipeline_runs_without_the_autotuner(monkeypatch):
    """Deleting an iterator waits for the autotuner's next round (tf_pipeline.without_autotune): every
    pipeline that fit, evaluation and prediction read is built without it."""
    import tensorflow as tf

    from harness.benchmarking.baseline_vit import baseline_training_data
    from harness.training.inputs import predict

    split = small_split()
    pipelines = [make_dataset(split, 3, 4), make_dataset(split, 3, 4, multiple=3),
                 make_training_dataset(split, 3, 4, range(2), seed=0, deterministic=False),
                 baseline_training_data(split, 3, 4, seed=0)]
    read = []
    monkeypatch.setattr(keras.Model, "predict", lambda self, data, **_: read.append(data))
    predict(keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Dense(2)]), split.images, batch_size=4)
    assert isinstance(read[0], tf.data.Dataset)
    assert [pipeline.options().autotune.enabled for pipeline in pipelines + read] == [False] * 5


def test_an_epochs_batches_depend_only_on_seed_and_epoch():
    """What exact resumption needs: epoch 2 is the same whether training starts at epoch 0 or 2."""
    split = small_split(count=24)
    make = lambda epochs, seed=0: epochs_of(make_training_dataset(  # noqa: E731
        split, 3, 8, epochs, seed, mixing="mixup"), steps=3)
    from_start, resumed = make(range(0, 3)), make(range(2, 3))
    np.testing.assert_array_equal(from_start[2], resumed[0])
    np.testing.assert_array_equal(make(range(0, 3))[1], from_start[1])  # and again, the same
    assert not np.array_equal(make(range(2, 3), seed=1)[0], resumed[0])  # another seed, other batches


def shifted(image, dy, dx):
    """`image` moved by (dy, dx) pixels, zeros where nothing moved in."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_crop_flip_is_a_shift_of_at_most_4_pixels_and_maybe_a_flip():
    split = small_split(count=16, seed=1)
    augmentation = build_augmentation("crop_flip", seed=3)
    originals = split.images.astype(np.float32)
    images = keras.ops.convert_to_numpy(augmentation(originals, training=True))
    found_flip = found_shift = False
    for image, original in zip(images, originals):
        matches = [
            (dy, dx, flip)
            for flip in (False, True)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if np.array_equal(image, shifted(original[:, ::-1] if flip else original, dy, dx))
        ]
        assert matches, "augmented image is not a shifted (and maybe flipped) original"
        found_flip |= any(flip for _, _, flip in matches)
        found_shift |= any((dy, dx) != (0, 0) for dy, dx, _ in matches)
    assert found_flip and found_shift  # 16 images: both happen
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(originals, training=False)), originals)


def test_random_shift_covers_every_offset_and_compiles():
    images = np.random.default_rng(0).uniform(0, 255, (64, 8, 8, 1)).astype("float32")
    layer = RandomShift(max_shift=2, seed=0)
    seen = set()
    for _ in range(4):
        for image, out in zip(images, keras.ops.convert_to_numpy(layer(images, training=True))):
            (offset,) = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                         if np.array_equal(out, shifted(image, dy, dx))]
            seen.add(offset)
    assert len(seen) == 25
    model = with_augmentation(keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)]),
                              build_augmentation("crop_flip", seed=0))
    assert all(layer.supports_jit for layer in model._flatten_layers())  # so XLA / jit stay on


def test_reflect_shift_equals_numpy_reflect_padding_and_crop():
    """shift2_flip's shift: pad 2 with np.pad's "reflect" (PyTorch's too, as airbench pads) and crop back."""
    images = np.random.default_rng(1).uniform(0, 255, (64, 6, 6, 2)).astype("float32")
    layer = RandomShift(max_shift=2, fill="reflect", seed=0)
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    crops = {(dy, dx): padded[:, 2 - dy:8 - dy, 2 - dx:8 - dx] for dy in range(-2, 3) for dx in range(-2, 3)}
    seen = set()
    for _ in range(3):
        for index, out in enumerate(keras.ops.convert_to_numpy(layer(images, training=True))):
            (offset,) = [offset for offset, crop in crops.items() if np.array_equal(out, crop[index])]
            seen.add(offset)
    assert len(seen) == 25
    assert [type(step).__name__ for step in build_augmentation("shift2_flip", seed=0).layers] == ["RandomShift",
                                                                                                  "RandomFlip"]
    assert build_augmentation("shift2_flip").layers[0].get_config()["fill"] == "reflect"
    with pytest.raises(ValueError, match="unknown fill"):
        RandomShift(fill="wrap")


@pytest.mark.parametrize("mixing", ["mixup", "cutmix"])
def test_mixing_blends_images_and_labels_alike(mixing):
    split = small_split(count=16, seed=2)
    (images, labels), = list(make_training_dataset(split, 3, 16, range(1), seed=0, mixing=mixing).take(1))
    images, labels = images.numpy(), labels.numpy()
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-5)  # still a distribution over classes
    assert (labels.max(axis=1) < 1).any()  # and some are mixed
    assert images.min() >= 0 and images.max() <= 255
    assert build_mixing("none") is None


@pytest.mark.parametrize("count, batches", [(24, 6), (5, 2)])  # 5 images: one short batch per epoch
def test_the_tensorflow_free_batches_equal_the_tf_data_ones(count, batches):
    """The JAX and PyTorch backends train on exactly the batches tf.data would give."""
    split = small_split(count=count)
    tf_batches = [(x.numpy(), y.numpy()) for x, y in make_training_dataset(split, 3, 8, range(1, 3), seed=5)]
    plain = TrainingBatches(split, 3, 8, first_epoch=1, seed=5)
    plain_batches = [plain[i] for i in range(len(plain))]
    plain.on_epoch_end()
    plain_batches += [plain[i] for i in range(len(plain))]
    assert len(plain_batches) == len(tf_batches) == batches
    for (x, y), (a, b) in zip(tf_batches, plain_batches):
        np.testing.assert_array_equal(x, a)
        np.testing.assert_array_equal(y, b)
    if count < 24:
        return
    evaluation = EvaluationBatches(split, 3, 10)
    assert [len(evaluation[i][0]) for i in range(len(evaluation))] == [10, 10, 4]
    np.testing.assert_array_equal(np.concatenate([evaluation[i][0] for i in range(3)]), split.images)


def test_no_augmentation_is_none():
    assert build_augmentation("none") is None


def test_reseeding_repeats_the_augmentation_exactly():
    """The trainer reseeds the in-model augmentation each epoch from (seed, epoch); resumption relies on it."""
    from harness.training.augment import reseed

    augmentation = build_augmentation("crop_flip", seed=0)
    images = small_split(count=32, seed=4).images.astype("float32")
    reseed(augmentation, 123)
    first = keras.ops.convert_to_numpy(augmentation(images, training=True))
    second = keras.ops.convert_to_numpy(augmentation(images, training=True))
    reseed(augmentation, 123)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(images, training=True)), first)
    assert not np.array_equal(first, second)

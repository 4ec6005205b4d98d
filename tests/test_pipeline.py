"""The tf.data pipeline and the augmentation layers."""

import numpy as np

from harness.augment import build_augmentation
from harness.data import Split
from harness.pipeline import make_dataset, make_training_dataset


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


def test_an_epochs_batches_depend_only_on_seed_and_epoch():
    """What exact resumption needs: epoch 2 is the same whether training starts at epoch 0 or 2."""
    split = small_split(count=24)
    make = lambda epochs, seed=0: epochs_of(make_training_dataset(  # noqa: E731
        split, 3, 8, epochs, seed, augmentation="crop_flip"), steps=3)
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
    dataset = make_training_dataset(split, num_classes=3, batch_size=16, epochs=range(1), seed=3,
                                    augmentation="crop_flip")
    images, labels = next(iter(dataset))
    images, labels = images.numpy(), labels.numpy()
    originals = split.images.astype(np.float32)
    found_flip = found_shift = False
    for image, label in zip(images, labels):
        candidates = [o for o, l in zip(originals, split.labels) if l == label.argmax()]
        matches = [
            (dy, dx, flip)
            for original in candidates
            for flip in (False, True)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if np.array_equal(image, shifted(original[:, ::-1] if flip else original, dy, dx))
        ]
        assert matches, "augmented image is not a shifted (and maybe flipped) original"
        found_flip |= any(flip for _, _, flip in matches)
        found_shift |= any((dy, dx) != (0, 0) for dy, dx, _ in matches)
    assert found_flip and found_shift  # 16 images: both happen


def test_no_augmentation_is_none():
    assert build_augmentation("none", 32) is None

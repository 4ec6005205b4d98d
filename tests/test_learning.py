"""Both models learn on the embedded CIFAR-10 sample within seconds of CPU (any Keras backend)."""

import keras
import numpy as np
import pytest

import cnn_baseline
import vit_tf
from harness.data import load_dataset

pytestmark = pytest.mark.trains  # each test fits a model for a few epochs

CHANCE = 0.1


@pytest.fixture(scope="module")
def sample():
    dataset = load_dataset()
    subset = np.random.default_rng(0).permutation(len(dataset.train))[:1500]  # all classes
    one_hot = lambda labels: keras.utils.to_categorical(labels, 10)  # noqa: E731
    return (
        (dataset.train.images[subset].astype("float32"), one_hot(dataset.train.labels[subset])),
        (dataset.test.images.astype("float32"), one_hot(dataset.test.labels)),
    )


@pytest.mark.parametrize(
    "build, epochs",
    [
        (lambda: vit_tf.build_vit("vit_test", hidden_dim=64, mlp_dim=128, num_heads=4), 3),
        (lambda: cnn_baseline.build_cnn("resnet_test"), 4),
        (lambda: vit_tf.build_vit("hybrid_test", hidden_dim=64, mlp_dim=128, num_heads=4), 4),
        (lambda: cnn_baseline.build_cnn("bit_test"), 4),
    ],
    ids=["vit", "cnn", "hybrid", "bit"],
)
def test_model_learns_the_sample(sample, build, epochs):
    (train_x, train_y), (test_x, test_y) = sample
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(
        keras.optimizers.AdamW(2e-3), keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    history = model.fit(train_x, train_y, batch_size=64, epochs=epochs, verbose=0).history
    _, test_accuracy = model.evaluate(test_x, test_y, verbose=0)
    assert history["loss"][-1] < history["loss"][0] < 2.35  # ln(10) = 2.30 at chance
    assert test_accuracy > 2 * CHANCE, f"test accuracy {test_accuracy:.3f} on 1,000 unseen images"

"""DeiT distillation: the token, its head, the loss and the frozen teacher (runs: test_distillation_runs.py)."""

import keras
import numpy as np
import pytest
from helpers import numpy_of

from cnn_baseline import build_cnn
from harness.training import distillation
from vit_tf import build_vit, parameter_breakdown
from vit_tf.layers import DistillationToken, TokenPooling


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def reference_loss(labels, class_logits, distillation_logits, teacher_logits, kind, alpha, temperature, smoothing):
    """DeiT's objective written out in numpy, averaged over the batch."""
    num_classes = labels.shape[-1]
    smoothed = labels * (1 - smoothing) + smoothing / num_classes
    true_part = -(smoothed * log_softmax(class_logits)).sum(-1)
    if kind == "hard":
        teacher_labels = np.eye(num_classes)[teacher_logits.argmax(-1)]
        teacher_part = -(teacher_labels * log_softmax(distillation_logits)).sum(-1)
    else:
        log_teacher = log_softmax(teacher_logits / temperature)
        log_student = log_softmax(distillation_logits / temperature)
        teacher_part = temperature**2 * (np.exp(log_teacher) * (log_teacher - log_student)).sum(-1)
    return ((1 - alpha) * true_part + alpha * teacher_part).mean()


@pytest.mark.parametrize("kind, alpha, temperature, smoothing",
                         [("hard", 0.5, 1.0, 0.0), ("hard", 0.3, 1.0, 0.1), ("soft", 0.1, 3.0, 0.0),
                          ("soft", 0.7, 2.0, 0.1)])
def test_the_loss_equals_its_definition_on_a_fixed_batch(kind, alpha, temperature, smoothing):
    rng = np.random.default_rng(0)
    labels = np.eye(5)[rng.integers(0, 5, 8)].astype("float32")
    logits = [rng.normal(0, 3, (8, 5)).astype("float32") for _ in range(3)]
    loss = distillation.DistillationLoss(kind, alpha, temperature, smoothing)
    got = float(loss(labels, np.concatenate(logits, axis=1)))
    assert got == pytest.approx(reference_loss(labels, *logits, kind, alpha, temperature, smoothing), rel=1e-5)
    # The teacher's term matters: another teacher, another loss (unless alpha is 0).
    other = [logits[0], logits[1], -logits[2]]
    assert float(loss(labels, np.concatenate(other, axis=1))) != pytest.approx(got, rel=1e-3)


def test_the_loss_round_trips_its_settings():
    loss = distillation.DistillationLoss("soft", 0.2, 4.0, 0.1)
    again = distillation.DistillationLoss.from_config(loss.get_config())
    assert (again.kind, again.alpha, again.temperature, again.label_smoothing) == ("soft", 0.2, 4.0, 0.1)


def test_the_distillation_token_is_token_one_and_has_its_own_readout():
    tokens = keras.ops.convert_to_tensor(np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4))  # class + 2 patches
    layer = DistillationToken()
    out = numpy_of(layer(tokens))
    token = numpy_of(layer.distillation_token)[0, 0]
    assert out.shape == (2, 4, 4)
    np.testing.assert_array_equal(out[:, 0], numpy_of(tokens)[:, 0])  # the class token stays first
    np.testing.assert_array_equal(out[:, 1], np.broadcast_to(token, (2, 4)))
    np.testing.assert_array_equal(out[:, 2:], numpy_of(tokens)[:, 1:])
    np.testing.assert_array_equal(numpy_of(TokenPooling("distillation")(out)), out[:, 1])
    assert 0 < np.abs(token).max() <= 2 * 0.02  # truncated normal, 2 standard deviations of 0.02


def test_distillation_adds_a_token_a_position_row_and_a_head_and_nothing_else():
    plain = build_vit("vit_test", num_classes=3)
    distilled = build_vit("vit_test", num_classes=3, distillation=True)
    hidden, classes = 16, 3
    assert distilled.count_params() - plain.count_params() == 2 * hidden + hidden * classes + classes
    assert "distillation_token" not in {layer.name for layer in plain.layers}  # off by default: paper counts hold
    before, after = parameter_breakdown(plain), parameter_breakdown(distilled)
    assert after["encoder"] == before["encoder"]
    assert after["head"] - before["head"] == hidden * classes + classes


def test_without_a_class_token_there_is_no_distillation_token():
    with pytest.raises(ValueError, match="distillation needs classifier='token'"):
        build_vit("vit_test", classifier="gap", distillation=True)


def randomised(model, seed=0):
    """Every weight drawn at random, so that the zero-initialised heads differ."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_the_saved_student_averages_its_two_heads_and_loads_back_exactly(tmp_path):
    model = randomised(build_vit("vit_test", num_classes=3, distillation=True))
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    heads = keras.Model(model.input, [model.get_layer("head").output, model.get_layer("head_distillation").output])
    class_logits, distillation_logits = (numpy_of(x).astype(np.float64) for x in heads(images))
    assert not np.allclose(class_logits, distillation_logits)
    output = numpy_of(model(images)).astype(np.float64)
    average = (np.exp(log_softmax(class_logits)) + np.exp(log_softmax(distillation_logits))) / 2
    np.testing.assert_allclose(np.exp(output), average, rtol=1e-5, atol=1e-7)

    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(numpy_of(loaded(images)), numpy_of(model(images)))


@pytest.mark.trains
def test_the_teacher_sees_the_augmented_images_and_stays_frozen_while_the_student_learns():
    student = build_vit("vit_test", num_classes=3, distillation=True)
    teacher = randomised(build_cnn("resnet_test", num_classes=3), seed=2)
    halve = keras.Sequential([keras.layers.Rescaling(0.5)], name="augmentation")  # a visible, fixed "augmentation"
    trainee = distillation.trainee(student, teacher, halve)
    images = np.random.default_rng(3).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    labels = np.eye(3)[np.arange(16) % 3].astype("float32")

    outputs = numpy_of(trainee(images, training=False))
    np.testing.assert_allclose(outputs[:, 6:], numpy_of(teacher(images * 0.5, training=False)), rtol=1e-5, atol=1e-5)

    teacher_weights = [np.array(w) for w in teacher.weights]  # BatchNorm's moving statistics included
    student_weights = [np.array(w) for w in student.trainable_weights]
    trainee.compile(optimizer=keras.optimizers.Adam(1e-2), loss=distillation.DistillationLoss(),
                    metrics=distillation.metrics())
    history = trainee.fit(images, labels, batch_size=8, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    for before, after in zip(teacher_weights, teacher.weights):
        np.testing.assert_array_equal(before, numpy_of(after))
    changed = [not np.array_equal(before, numpy_of(after)) for before, after in zip(student_weights,
                                                                                      student.trainable_weights)]
    assert all(changed)
    assert np.abs(numpy_of(student.get_layer("head_distillation").kernel)).max() > 0

"""keras-hub's ViTImageClassifier, saved as a preset folder (what `classifier.save_to_preset` writes and students
download): its backbone and its head load into `build_vit`, and the model gives the classifier's logits."""

import json

import numpy as np
import pytest
from helpers import numpy_of

import vit_tf
from model_parts.checkpoint import CheckpointError

keras_hub = pytest.importorskip("keras_hub")

TOLERANCE = 1e-5
CLASSES = 5


def saved_classifier(folder, class_token=True, pooling="token", intermediate_dim=None):
    """A small ViTImageClassifier with random weights everywhere (so every mapping is tested), saved to `folder`."""
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=3,
                                            hidden_dim=24, mlp_dim=48, use_class_token=class_token)
    classifier = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=CLASSES, pooling=pooling,
                                                     intermediate_dim=intermediate_dim)
    classifier.set_weights([np.random.default_rng(index).normal(0, 0.2, weight.shape).astype("float32")
                            for index, weight in enumerate(classifier.get_weights())])
    classifier.save_to_preset(str(folder))
    return classifier


def ours(**settings):
    return vit_tf.build_vit("vit_test", num_classes=CLASSES, patch_size=8, hidden_dim=24, num_layers=2, num_heads=3,
                            mlp_dim=48, approximate_gelu=False, **settings)


def pixels():
    return np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("case, settings, our_settings", [
    ("class token", {}, {}),
    ("pre-logits", dict(intermediate_dim=16), dict(representation_size=16)),
    ("averaged tokens", dict(class_token=False, pooling="gap"), dict(classifier="gap")),
])
def test_a_classifier_preset_loads_with_its_logits(tmp_path, case, settings, our_settings):
    classifier = saved_classifier(tmp_path / "preset", **settings)
    model = ours(**our_settings)
    report = vit_tf.load_pretrained(model, tmp_path / "preset", keep_head=True)
    assert any("ViTImageClassifier, with its head" in line for line in report.describe())
    images = pixels()
    np.testing.assert_allclose(numpy_of(model(images)), numpy_of(classifier(images / 127.5 - 1)), atol=TOLERANCE)


def test_its_task_weights_file_names_the_same_preset(tmp_path):
    classifier = saved_classifier(tmp_path / "preset")
    model = ours()
    vit_tf.load_pretrained(model, tmp_path / "preset" / "task.weights.h5", keep_head=True)
    images = pixels()
    np.testing.assert_allclose(numpy_of(model(images)), numpy_of(classifier(images / 127.5 - 1)), atol=TOLERANCE)


def test_without_keep_head_the_head_starts_new_as_for_fine_tuning(tmp_path):
    saved_classifier(tmp_path / "preset")
    model = ours()
    vit_tf.load_pretrained(model, tmp_path / "preset")
    assert not np.any(numpy_of(model.get_layer("head").kernel))


@pytest.mark.parametrize("damage, message", [
    ("pooling", "the head reads out 'gap' from a backbone with a class token"),
    ("activation", "the head's activation is 'relu'"),
    ("class", "is not a keras-hub ViTImageClassifier's config (class_name 'ViTBackbone')"),
    ("json", "task.json is not readable JSON"),
])
def test_a_classifier_these_layers_cannot_compute_is_refused_in_one_line(tmp_path, damage, message):
    saved_classifier(tmp_path / "preset")
    task_file = tmp_path / "preset" / "task.json"
    task = json.loads(task_file.read_text())
    if damage == "pooling":
        task["config"]["pooling"] = "gap"
    elif damage == "activation":
        task["config"]["activation"] = "relu"
    elif damage == "class":
        task["class_name"] = "ViTBackbone"
    task_file.write_text("{not json" if damage == "json" else json.dumps(task))
    with pytest.raises(CheckpointError) as raised:
        vit_tf.load_pretrained(ours(), tmp_path / "preset", keep_head=True)
    assert message in str(raised.value) and "\n" not in str(raised.value)

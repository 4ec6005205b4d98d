"""Loading the authors' released checkpoint format: every weight, the logits, interpolation, errors."""

import math

import numpy as np
import pytest
from checkpoint_files import LINEN, forward, vit_arrays, write
from keras import ops

import vit_tf
from vit_tf.checkpoint import CheckpointError, interpolate_grid, load_pretrained

IMAGES = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype("float32")


def model_like_the_file(num_classes=10, image_size=32, **overrides):
    return vit_tf.build_vit("vit_test", image_size=image_size, num_classes=num_classes, **overrides)


def authors_layout(model):
    """The model's weights written back into the released names and layouts (pre-Linen), for a round trip."""
    value = lambda variable: ops.convert_to_numpy(variable)  # noqa: E731
    hidden, heads = 16, 2
    projection = model.get_layer("patch_embedding").projection
    arrays = {"embedding/kernel": value(projection.kernel).reshape(4, 4, 3, hidden),
              "embedding/bias": value(projection.bias), "cls": value(model.get_layer("class_token").class_token),
              "Transformer/posembed_input/pos_embedding":
                  value(model.get_layer("position_embedding").position_embedding),
              "Transformer/encoder_norm/scale": value(model.get_layer("encoder_norm").gamma),
              "Transformer/encoder_norm/bias": value(model.get_layer("encoder_norm").beta)}
    for index in range(2):
        block, p = model.get_layer(f"encoder_block_{index}"), f"Transformer/encoderblock_{index}/"
        for norm, name in ((block.attention_norm, "LayerNorm_0"), (block.mlp_norm, "LayerNorm_2")):
            arrays[f"{p}{name}/scale"], arrays[f"{p}{name}/bias"] = value(norm.gamma), value(norm.beta)
        a = f"{p}MultiHeadDotProductAttention_1/"
        for ours, theirs in ((block.attention.query, "query"), (block.attention.key, "key"),
                             (block.attention.value, "value")):
            arrays[f"{a}{theirs}/kernel"] = value(ours.kernel).reshape(hidden, heads, hidden // heads)
            arrays[f"{a}{theirs}/bias"] = value(ours.bias).reshape(heads, hidden // heads)
        arrays[f"{a}out/kernel"] = value(block.attention.output_projection.kernel).reshape(
            heads, hidden // heads, hidden)
        arrays[f"{a}out/bias"] = value(block.attention.output_projection.bias)
        for ours, theirs in ((block.mlp.dense_in, "Dense_0"), (block.mlp.dense_out, "Dense_1")):
            (arrays[f"{p}MlpBlock_3/{theirs}/kernel"],
             arrays[f"{p}MlpBlock_3/{theirs}/bias"]) = value(ours.kernel), value(ours.bias)
    arrays["head/kernel"], arrays["head/bias"] = (value(model.get_layer("head").kernel),
                                                  value(model.get_layer("head").bias))
    return arrays


def test_every_weight_round_trips_exactly(tmp_path):
    arrays = vit_arrays()
    model = model_like_the_file()
    report = load_pretrained(model, write(tmp_path / "ViT-test.npz", arrays), keep_head=True)
    back = authors_layout(model)
    assert set(back) == set(arrays) and report.loaded_keys == len(arrays) and not report.dropped
    for key, array in arrays.items():
        np.testing.assert_array_equal(back[key], array, err_msg=key)


def test_logits_equal_a_numpy_forward_pass_of_the_same_weights(tmp_path):
    arrays = vit_arrays()
    model = model_like_the_file()
    load_pretrained(model, write(tmp_path / "ViT-test.npz", arrays), keep_head=True)
    np.testing.assert_allclose(model.predict(IMAGES, verbose=0), forward(arrays, IMAGES), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("variant", ["linen", "params-prefix", "stacked-blocks"])
def test_linen_prefixed_and_stacked_files_load_the_same_weights(tmp_path, variant):
    arrays = vit_arrays(names=LINEN)
    stored = dict(arrays)
    if variant == "params-prefix":
        stored = {f"params/{key}": value for key, value in arrays.items()}
    elif variant == "stacked-blocks":  # big_vision's scanned encoder: one array per leaf, layer axis first
        stored = {k: v for k, v in arrays.items() if not k.startswith("Transformer/encoderblock_")}
        for key in [k for k in arrays if k.startswith("Transformer/encoderblock_0/")]:
            leaf = key.split("/", 2)[2]
            stored[f"Transformer/encoderblock/{leaf}"] = np.stack([arrays[f"Transformer/encoderblock_{i}/{leaf}"]
                                                                   for i in range(2)])
    model = model_like_the_file()
    load_pretrained(model, write(tmp_path / "file.npz", stored), keep_head=True)
    np.testing.assert_allclose(model.predict(IMAGES, verbose=0), forward(arrays, IMAGES, names=LINEN),
                               rtol=1e-4, atol=1e-4)


def test_fine_tuning_drops_the_pretraining_head_and_starts_a_zero_head(tmp_path):
    arrays = vit_arrays(num_classes=21, representation=16)
    model = model_like_the_file(num_classes=5)
    report = load_pretrained(model, write(tmp_path / "i21k.npz", arrays))
    assert sorted(report.dropped) == ["head/bias", "head/kernel", "pre_logits/bias", "pre_logits/kernel"]
    assert "pre_logits" not in {layer.name for layer in model.layers}
    assert not np.any(ops.convert_to_numpy(model.get_layer("head").kernel))
    assert not np.any(model.predict(IMAGES, verbose=0))  # a zero head: every logit 0 until fine-tuned
    assert any("dropped the pre-training head" in line for line in report.describe())


def test_the_pre_logits_layer_is_built_and_loaded_when_asked_for(tmp_path):
    arrays = vit_arrays(num_classes=21, representation=24)
    model = model_like_the_file(num_classes=21, representation_size=24)
    report = load_pretrained(model, write(tmp_path / "i21k.npz", arrays), keep_head=True)
    assert not report.dropped
    np.testing.assert_allclose(model.predict(IMAGES, verbose=0), forward(arrays, IMAGES), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("file_size, model_size, message", [
    (24, None, "has a pre-logits layer and the model has none, so its head cannot be kept; build the model with "
               "representation_size=24"),
    (None, 24, "has no pre-logits layer and the model has one, so its head cannot be kept"),
], ids=["file-has-pre-logits", "model-has-pre-logits"])
def test_keeping_the_head_refuses_a_pre_logits_mismatch_and_sets_nothing(tmp_path, file_size, model_size, message):
    model = model_like_the_file(num_classes=21, representation_size=model_size)
    before = ops.convert_to_numpy(model.get_layer("encoder_norm").gamma)
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(model, write(tmp_path / "i21k.npz", vit_arrays(num_classes=21, representation=file_size)),
                        keep_head=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(model.get_layer("encoder_norm").gamma), before)


def test_a_pre_logits_layer_the_file_lacks_is_reported_as_freshly_initialised(tmp_path):
    model = model_like_the_file(num_classes=5, representation_size=24)
    report = load_pretrained(model, write(tmp_path / "plain.npz", vit_arrays()))
    assert report.reinitialised == ["pre_logits"] and sorted(report.dropped) == ["head/bias", "head/kernel"]
    assert "not in the file, so freshly initialised: pre_logits" in report.describe()


@pytest.mark.parametrize("file_has_class_token, classifier, message", [
    (True, "gap", "reads out a class token \\(eq. 4\\), but the model reads out global average pooling of the tokens "
                  "\\(no class token\\); build the model with classifier='token'"),
    (False, "token", "reads out global average pooling of the tokens \\(no class token\\), but the model reads out a "
                     "class token \\(eq. 4\\); build the model with classifier='gap'"),
], ids=["class-token-file-into-gap", "gap-file-into-class-token"])
def test_class_token_and_average_pooling_are_named_when_they_differ(tmp_path, file_has_class_token, classifier,
                                                                     message):
    arrays = vit_arrays()
    if not file_has_class_token:  # no cls, and position embeddings for the 64 patches only
        del arrays["cls"]
        arrays["Transformer/posembed_input/pos_embedding"] = arrays["Transformer/posembed_input/pos_embedding"][:, 1:]
    path = write(tmp_path / "file.npz", arrays)
    with pytest.raises(CheckpointError, match=message):
        vit_tf.check_compatible(path, vit_tf.resolve_config("vit_test", classifier=classifier))
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(model_like_the_file(classifier=classifier), path, keep_head=True)


def test_a_bfloat16_file_loads_as_the_same_numbers_in_float32(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    arrays = vit_arrays()
    stored = {key: value.astype(ml_dtypes.bfloat16).view("V2") for key, value in arrays.items()}  # as numpy reads it
    model = model_like_the_file()
    report = load_pretrained(model, write(tmp_path / "bf16.npz", stored), keep_head=True)
    assert sorted(report.widened) == sorted(arrays)
    assert any(line.startswith(f"converted {len(arrays)} bfloat16 arrays to float32") for line in report.describe())
    exact = {key: value.view(ml_dtypes.bfloat16).astype(np.float32) for key, value in stored.items()}
    np.testing.assert_allclose(model.predict(IMAGES, verbose=0), forward(exact, IMAGES), rtol=1e-4, atol=1e-4)


def test_a_flattened_patch_projection_is_refused_in_one_line(tmp_path):
    arrays = vit_arrays()
    arrays["embedding/kernel"] = arrays["embedding/kernel"].reshape(48, 16)  # as some converters write it
    with pytest.raises(CheckpointError, match=r"stores embedding/kernel flattened, as \(48, 16\); the released "
                                              r"layout is \(P, P, 3, D\)"):
        load_pretrained(model_like_the_file(), write(tmp_path / "flat.npz", arrays))


def bilinear_aligned_corners(grid, new_side):
    """The rule written element by element: output (i, j) samples input (i s, j s), s = (n - 1) / (m - 1)."""
    side = grid.shape[0]
    scale = (side - 1) / (new_side - 1)
    out = np.zeros((new_side, new_side, grid.shape[2]))
    for i in range(new_side):
        for j in range(new_side):
            y, x = i * scale, j * scale
            y0, x0 = int(math.floor(y)), int(math.floor(x))
            y1, x1 = min(y0 + 1, side - 1), min(x0 + 1, side - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = ((1 - dy) * (1 - dx) * grid[y0, x0] + (1 - dy) * dx * grid[y0, x1]
                         + dy * (1 - dx) * grid[y1, x0] + dy * dx * grid[y1, x1])
    return out


@pytest.mark.parametrize("side, new_side", [(8, 16), (14, 24), (7, 3)])
def test_position_grid_interpolation_follows_the_authors_rule(side, new_side):
    grid = np.random.default_rng(0).normal(size=(side, side, 5))
    expected = bilinear_aligned_corners(grid, new_side)
    np.testing.assert_allclose(interpolate_grid(grid, new_side), expected, atol=1e-12)
    scipy_ndimage = pytest.importorskip("scipy.ndimage")  # what vit_jax/checkpoint.py calls
    zoomed = scipy_ndimage.zoom(grid, (new_side / side, new_side / side, 1), order=1)
    np.testing.assert_allclose(zoomed, expected, atol=1e-9)


def test_a_larger_image_interpolates_the_position_embeddings_and_keeps_the_class_row(tmp_path):
    arrays = vit_arrays(grid=8)
    model = model_like_the_file(image_size=64)  # 16 x 16 patches
    report = load_pretrained(model, write(tmp_path / "ckpt.npz", arrays))
    assert report.position_grid == (8, 16) and any("from a 8x8 to a 16x16" in line for line in report.describe())
    table = ops.convert_to_numpy(model.get_layer("position_embedding").position_embedding)
    stored = arrays["Transformer/posembed_input/pos_embedding"]
    np.testing.assert_array_equal(table[0, 0], stored[0, 0])
    expected = bilinear_aligned_corners(stored[0, 1:].reshape(8, 8, -1), 16).reshape(256, -1)
    np.testing.assert_allclose(table[0, 1:], expected, atol=1e-6)


def test_a_checkpoint_of_another_size_names_the_preset_that_fits(tmp_path):
    path = write(tmp_path / "ViT-mini.npz", vit_arrays(hidden=128, layers=3, mlp=256, heads=4))
    with pytest.raises(CheckpointError, match="hidden_dim 128, num_layers 3.*but the model has.*"
                                              "use --model vit --preset vit_cifar_mini"):
        load_pretrained(model_like_the_file(), path)


@pytest.mark.parametrize("damage, message", [
    (lambda a: a.pop("Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias"),
     "has no Transformer/encoderblock_1/MlpBlock_3/Dense_1/bias"),
    (lambda a: a.update({"Transformer/extra/kernel": np.zeros(3, np.float32)}),
     r"has 1 array\(s\) this model has no place for, e.g. Transformer/extra/kernel"),
    (lambda a: a.update({"embedding/bias": np.zeros(17, np.float32)}),
     r"embedding/bias has shape \(17,\), which does not fit"),
    (lambda a: a.pop("embedding/kernel"), "not a ViT checkpoint"),
], ids=["missing-key", "extra-key", "wrong-shape", "not-a-vit"])
def test_a_damaged_checkpoint_names_the_key_and_sets_nothing(tmp_path, damage, message):
    arrays = vit_arrays()
    damage(arrays)
    model = model_like_the_file()
    before = [ops.convert_to_numpy(w).copy() for w in model.weights]
    with pytest.raises(CheckpointError, match=message):
        load_pretrained(model, write(tmp_path / "damaged.npz", arrays))
    for old, new in zip(before, model.weights):
        np.testing.assert_array_equal(old, ops.convert_to_numpy(new))  # nothing half-loaded


def test_files_that_are_not_checkpoints_are_refused_without_running_pickles(tmp_path):
    full = write(tmp_path / "full.npz", vit_arrays())
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        load_pretrained(model_like_the_file(), truncated)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, cls=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_pretrained(model_like_the_file(), pickled)
    text = tmp_path / "notes.npz"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not an .npz file"):
        load_pretrained(model_like_the_file(), text)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(model_like_the_file(), tmp_path / "missing.npz")

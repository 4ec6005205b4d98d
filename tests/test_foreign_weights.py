"""Weights from where students find them. timm's ViTs in both directions: small timm models with random
weights, saved as timm saves them, load into `build_vit` with timm's logits; ours exports to a file timm loads,
and back again exactly. keras-hub's ViTBackbone, saved as a preset folder, loads with its tokens."""

import importlib.util
import json

import keras
import numpy as np
import pytest
from helpers import numpy_of

import vit_tf
from model_parts.checkpoint import CheckpointError
from model_parts.safetensors_file import read_safetensors, write_safetensors
from vit_tf.timm_weights import timm_arguments, timm_state_dict

if importlib.util.find_spec("timm") is None:  # not importorskip: timm's import needs import_timm's torchvision fix
    pytest.skip("pip install -r requirements-peers.txt", allow_module_level=True)
torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
from harness.timm_import import import_timm  # noqa: E402

timm = import_timm()
from timm.models.deit import VisionTransformerDistilled  # noqa: E402
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

TOLERANCE = 1e-5
SMALL = dict(embed_dim=24, depth=2, num_heads=3, mlp_ratio=2.0, num_classes=5)
VARIANTS = {  # name: (timm class, its arguments, our build_vit arguments)
    "class-token-p4": (VisionTransformer, dict(img_size=32, patch_size=4), {}),
    "class-token-p8": (VisionTransformer, dict(img_size=32, patch_size=8), {}),
    "gap": (VisionTransformer, dict(img_size=32, patch_size=8, class_token=False, global_pool="avg", fc_norm=False),
            dict(classifier="gap")),
    "distilled": (VisionTransformerDistilled, dict(img_size=32, patch_size=8), dict(distillation=True)),
}


def timm_model(kind, arguments, seed=0):
    torch.manual_seed(seed)
    model = kind(**SMALL, **arguments).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # timm zero-initialises some: random everywhere tests every mapping
            parameter.normal_(0, 0.2)
    return model


def ours_for(timm_arguments_, ours_arguments, image_size=32):
    return vit_tf.build_vit("vit_test", image_size=image_size, num_classes=SMALL["num_classes"],
                            patch_size=timm_arguments_["patch_size"], hidden_dim=SMALL["embed_dim"],
                            num_layers=SMALL["depth"], num_heads=SMALL["num_heads"],
                            mlp_dim=int(SMALL["embed_dim"] * SMALL["mlp_ratio"]), approximate_gelu=False,
                            **ours_arguments)


def save_as_timm(model, path):
    safetensors_torch.save_file({key: value.contiguous() for key, value in model.state_dict().items()}, path)
    return path


def images(size=32, count=4):
    return np.random.default_rng(1).uniform(0, 255, (count, size, size, 3)).astype("float32")


def timm_logits(model, pixels, heads=False):
    """timm's logits on our pixels, normalised as timm's AugReg ViTs expect (mean 0.5, std 0.5: our rescale).
    `heads`: a distilled model's two heads, as timm returns them in distilled training."""
    batch = torch.from_numpy(pixels / 127.5 - 1).permute(0, 3, 1, 2)
    if heads:
        model.set_distilled_training(True)
        model.train()  # no dropout or drop-path is configured: training mode only returns both heads
    with torch.no_grad():
        output = model(batch)
    model.eval()
    return [tensor.numpy() for tensor in output] if heads else output.numpy()


def assert_same_logits(ours, theirs, distilled=False):
    """Ours and timm's on the same images; a distilled model's two heads each (the fused outputs differ by
    design: ours averages the heads' softmax, timm their logits)."""
    pixels = images()
    if distilled:
        for mine, timms in zip(our_heads(ours, pixels), timm_logits(theirs, pixels, heads=True), strict=True):
            np.testing.assert_allclose(mine, timms, atol=TOLERANCE)
    else:
        np.testing.assert_allclose(numpy_of(ours(pixels)), timm_logits(theirs, pixels), atol=TOLERANCE)


def our_heads(model, pixels):
    heads = [model.get_layer(name).output for name in ("head", "head_distillation")]
    return [numpy_of(logits) for logits in keras.Model(model.input, heads)(pixels)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_timm_file_loads_with_timms_logits(tmp_path, variant):
    kind, arguments, ours_arguments = VARIANTS[variant]
    theirs = timm_model(kind, arguments)
    ours = ours_for(arguments, ours_arguments)
    report = vit_tf.load_pretrained(ours, save_as_timm(theirs, tmp_path / "model.safetensors"), keep_head=True)
    assert report.loaded_keys == len(ours.weights) and not report.dropped  # each of ours set once
    assert any("converted from timm's layout; 3 attention heads" in line for line in report.describe())
    assert_same_logits(ours, theirs, distilled=variant == "distilled")


def test_an_older_timm_file_with_a_pre_logits_layer_loads_it(tmp_path):
    """timm before 0.9 kept the ImageNet-21k files' tanh pre-logits layer as `pre_logits.fc`: it becomes ours."""
    _, arguments, _ = VARIANTS["class-token-p4"]
    theirs = timm_model(VisionTransformer, arguments)
    rng = np.random.default_rng(2)
    pre_logits = rng.normal(0, 0.2, (7, SMALL["embed_dim"])).astype("float32"), rng.normal(0, 0.2, 7).astype("float32")
    head = rng.normal(0, 0.2, (SMALL["num_classes"], 7)).astype("float32"), theirs.head.bias.detach().numpy()
    state = {**{key: value.numpy() for key, value in theirs.state_dict().items()},
             "pre_logits.fc.weight": pre_logits[0], "pre_logits.fc.bias": pre_logits[1],
             "head.weight": head[0], "head.bias": head[1]}
    write_safetensors(tmp_path / "model.safetensors", state)
    ours = ours_for(arguments, dict(representation_size=7))
    vit_tf.load_pretrained(ours, tmp_path / "model.safetensors", keep_head=True)
    pixels = images()
    with torch.no_grad():  # timm's class-token features, then the old head: Linear, tanh, Linear
        features = theirs.forward_head(theirs.forward_features(torch.from_numpy(pixels / 127.5 - 1).permute(
            0, 3, 1, 2)), pre_logits=True).numpy()
    expected = np.tanh(features @ pre_logits[0].T + pre_logits[1]) @ head[0].T + head[1]
    np.testing.assert_allclose(numpy_of(ours(pixels)), expected, atol=TOLERANCE)


def test_an_interpolated_grid_gives_timms_logits_with_the_same_table(tmp_path):
    """At 48 px the 4x4 grid becomes 6x6 (bilinear, corners aligned, as for the authors' files); timm at 48 px
    with that table gives the same logits."""
    _, arguments, _ = VARIANTS["class-token-p8"]
    small = timm_model(VisionTransformer, arguments)
    ours = ours_for(arguments, {}, image_size=48)
    report = vit_tf.load_pretrained(ours, save_as_timm(small, tmp_path / "model.safetensors"), keep_head=True)
    assert report.position_grid == (4, 6)
    large = timm_model(VisionTransformer, {**arguments, "img_size": 48})
    state = {**small.state_dict(), "pos_embed": torch.from_numpy(numpy_of(
        ours.get_layer("position_embedding").position_embedding))}
    large.load_state_dict(state)
    pixels = images(48)
    np.testing.assert_allclose(numpy_of(ours(pixels)), timm_logits(large, pixels), atol=TOLERANCE)


@pytest.mark.parametrize("variant", ["class-token-p4", "gap", "distilled"])
def test_ours_exports_to_a_file_timm_loads_and_back_exactly(tmp_path, variant):
    kind, arguments, ours_arguments = VARIANTS[variant]
    ours = ours_for(arguments, ours_arguments)
    ours.set_weights([np.random.default_rng(index).normal(0, 0.2, weight.shape).astype("float32")
                      for index, weight in enumerate(ours.get_weights())])
    class_name, rebuild = timm_arguments(ours)
    assert class_name.endswith(kind.__name__) and rebuild["act_layer"] == "gelu"
    write_safetensors(tmp_path / "model.safetensors", timm_state_dict(ours), {"num_heads": rebuild["num_heads"]})
    theirs = kind(**rebuild).eval()
    theirs.load_state_dict(safetensors_torch.load_file(tmp_path / "model.safetensors"))  # strict: every key
    assert_same_logits(ours, theirs, distilled=variant == "distilled")
    again = ours_for(arguments, ours_arguments)
    report = vit_tf.load_pretrained(again, tmp_path / "model.safetensors", keep_head=True)
    assert any("from the file's metadata" in line for line in report.describe())
    for before, after in zip(ours.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_our_writer_and_reader_agree_with_the_safetensors_package(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -2], np.int64),
              "c": np.ones((1, 1, 2), np.float16)}
    write_safetensors(tmp_path / "ours.safetensors", arrays, {"note": "x"})
    from safetensors.numpy import load_file, save_file

    for key, value in load_file(tmp_path / "ours.safetensors").items():
        np.testing.assert_array_equal(value, arrays[key])
    save_file(arrays, tmp_path / "theirs.safetensors", metadata={"note": "y"})
    read, metadata = read_safetensors(tmp_path / "theirs.safetensors")
    assert metadata == {"note": "y"} and read.keys() == arrays.keys()
    for key, value in read.items():
        assert value.dtype == arrays[key].dtype
        np.testing.assert_array_equal(value, arrays[key])


def test_bfloat16_files_and_pytorch_state_dicts_load_the_same_weights(tmp_path):
    _, arguments, _ = VARIANTS["class-token-p4"]
    theirs = timm_model(VisionTransformer, arguments)
    half = {key: value.to(torch.bfloat16).contiguous() for key, value in theirs.state_dict().items()}
    safetensors_torch.save_file(half, tmp_path / "bf16.safetensors")
    torch.save({key: value.float() for key, value in half.items()}, tmp_path / "model.pth")
    loaded, reports = [], []
    for name in ("bf16.safetensors", "model.pth"):
        model = ours_for(arguments, {})
        reports.append(vit_tf.load_pretrained(model, tmp_path / name, keep_head=True))
        loaded.append(model.get_weights())
    assert [len(report.widened) for report in reports] == [len(model.weights), 0]  # bfloat16 -> float32, exactly
    for first, second in zip(*loaded, strict=True):
        np.testing.assert_array_equal(first, second)


class Payload:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.mark.parametrize("case, message", [
    ("fc_norm", "a LayerNorm after average pooling, which vit_tf's layers do not have"),
    ("layer_scale", "timm's blocks.0.ls1.gamma: layer scale"),
    ("tanh_model", "uses exact GELU; build the model with approximate_gelu=False"),
    ("distilled_into_plain", "has a distillation token (a distilled DeiT) and the model has none"),
    ("other_heads", "holds a ViT with patch_size 4, hidden_dim 24, num_layers 2, mlp_dim 48, num_heads 3, but the "
                    "model has"),
    ("named_in_config_json", "num_heads 6, but the model has"),  # a vit_small: 6 heads; the model has 3
    ("truncated", "is not a readable .safetensors file"),
    ("pickled_code", "is not a PyTorch state dict that loads without running code"),
])
def test_what_cannot_load_exactly_is_refused_in_one_line(tmp_path, capsys, case, message):
    _, arguments, _ = VARIANTS["class-token-p4"]
    ours, path = ours_for(arguments, {}), tmp_path / "model.safetensors"
    if case == "fc_norm":
        save_as_timm(timm_model(VisionTransformer, {**arguments, "class_token": False, "global_pool": "avg"}), path)
        ours = ours_for(arguments, {"classifier": "gap"})
    elif case == "layer_scale":
        save_as_timm(timm_model(VisionTransformer, {**arguments, "init_values": 1e-5}), path)
    elif case == "tanh_model":
        save_as_timm(timm_model(VisionTransformer, arguments), path)
        ours = vit_tf.build_vit("vit_test", num_classes=5, hidden_dim=24, num_heads=3, mlp_dim=48)
    elif case == "distilled_into_plain":
        save_as_timm(timm_model(VisionTransformerDistilled, arguments), path)
    elif case == "other_heads":  # the file says 3 heads; the model has 2
        write_safetensors(path, {key: value.numpy() for key, value in
                                 timm_model(VisionTransformer, arguments).state_dict().items()}, {"num_heads": 3})
        ours = vit_tf.build_vit("vit_test", num_classes=5, hidden_dim=24, num_heads=2, mlp_dim=48,
                                approximate_gelu=False)
    elif case == "named_in_config_json":  # as the Hugging Face hub keeps a timm model
        save_as_timm(timm_model(VisionTransformer, arguments), path)
        (tmp_path / "config.json").write_text(json.dumps({"architecture": "vit_small_patch16_224", "num_classes": 5}))
    elif case == "truncated":
        save_as_timm(timm_model(VisionTransformer, arguments), path)
        path.write_bytes(path.read_bytes()[:5000])
    else:
        path = tmp_path / "model.pth"
        torch.save({"weight": torch.zeros(2), "payload": Payload()}, path)
    with pytest.raises(CheckpointError) as raised:
        vit_tf.load_pretrained(ours, path, keep_head=True)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert "this ran" not in capsys.readouterr().out


@pytest.mark.trains
def test_train_py_fine_tunes_a_timm_file_and_evaluate_py_exports_it_back(image_folder, tmp_path):
    """As a student would: --pretrained model.safetensors (exact GELU chosen for it, recorded), then
    evaluate.py --export --format timm gives a file and arguments timm rebuilds the model from."""
    import evaluate
    from harness.training.config import TrainConfig
    from harness.training.trainer import train

    theirs = VisionTransformer(img_size=32, patch_size=4, embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0,
                               num_classes=1000)  # vit_test's size, an ImageNet head
    save_as_timm(theirs, tmp_path / "model.safetensors")
    run = tmp_path / "run"
    train(TrainConfig(preset="vit_test", data_dir=str(image_folder), epochs=1, batch_size=4,
                      pretrained=str(tmp_path / "model.safetensors"), run_dir=str(run)), verbose=0)
    config = json.loads((run / "config.json").read_text())
    assert config["gelu"] == "exact"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["pretrained_checkpoint"]["file"] == "model.safetensors"
    evaluate.main([str(run), "--export", str(tmp_path / "export"), "--format", "timm"])
    summary = json.loads((tmp_path / "export" / "export.json").read_text())
    assert summary["check"]["max_abs_logit_difference"] < 1e-4
    rebuilt = VisionTransformer(**summary["timm"]["arguments"]).eval()
    rebuilt.load_state_dict(safetensors_torch.load_file(tmp_path / "export" / "model.safetensors"))
    assert summary["timm"]["arguments"]["num_classes"] == 3 and summary["timm"]["arguments"]["act_layer"] == "gelu"


@pytest.fixture(scope="module")
def keras_hub():
    return pytest.importorskip("keras_hub")


def keras_hub_preset(keras_hub, folder, **settings):
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=3,
                                            hidden_dim=24, mlp_dim=48, **settings)
    backbone.set_weights([np.random.default_rng(index).normal(0, 0.2, weight.shape).astype("float32")
                          for index, weight in enumerate(backbone.get_weights())])
    backbone.save_to_preset(str(folder))
    return backbone


@pytest.mark.parametrize("classifier", ["token", "gap"])
def test_a_keras_hub_preset_loads_with_its_tokens(keras_hub, tmp_path, classifier):
    backbone = keras_hub_preset(keras_hub, tmp_path / "preset", use_class_token=classifier == "token")
    ours = ours_for(dict(patch_size=8), dict(classifier=classifier))
    preset = tmp_path / "preset" / ("model.weights.h5" if classifier == "token" else "")  # the file, or its folder
    report = vit_tf.load_pretrained(ours, preset)
    assert report.loaded_keys == len(backbone.weights) and any("keras-hub" in line for line in report.describe())
    assert not np.any(numpy_of(ours.get_layer("head").kernel))  # a backbone: the head starts new, at zero
    pixels = images()
    tokens, _ = vit_tf.encoder_outputs(ours, pixels)
    np.testing.assert_allclose(numpy_of(tokens), numpy_of(backbone(pixels / 127.5 - 1)), atol=TOLERANCE)


@pytest.mark.parametrize("case, message", [
    ("no_biases", "is a ViTBackbone with use_mha_bias=False; these layers have biases everywhere"),
    ("keep_head", "has no classification head to keep (a backbone)"),
    ("no_config", "has no readable config.json beside it"),
    ("tanh_model", "is a keras-hub ViT, which uses exact GELU"),
])
def test_what_a_keras_hub_preset_cannot_give_is_refused_in_one_line(keras_hub, tmp_path, case, message):
    keras_hub_preset(keras_hub, tmp_path / "preset", use_mha_bias=case != "no_biases")
    ours = ours_for(dict(patch_size=8), {})
    if case == "no_config":
        (tmp_path / "preset" / "config.json").unlink()
    if case == "tanh_model":
        ours = vit_tf.build_vit("vit_test", num_classes=5, patch_size=8, hidden_dim=24, num_heads=3, mlp_dim=48)
    with pytest.raises(CheckpointError) as raised:
        vit_tf.load_pretrained(ours, tmp_path / "preset" / "model.weights.h5", keep_head=case == "keep_head")
    assert message in str(raised.value) and "\n" not in str(raised.value)

"""Weight files that lie: every field a checkpoint file states is checked (a .safetensors header's dtypes, shapes
and byte ranges, its metadata, the config.json beside a timm file or in a keras-hub preset, the arrays of an
.npz), and a file that does not hold what it says is refused in one line, never a traceback or a silent load.
The files are written here, small, with numpy alone."""

import io
import json
import struct
import zipfile

import numpy as np
import pytest
from checkpoint_files import bit_arrays, vit_arrays, write
from helpers import one_line_error, run_train

import cnn_baseline
import vit_tf
from model_parts.checkpoint import CheckpointError
from model_parts.safetensors_file import read_safetensors, write_safetensors
from vit_tf.timm_weights import timm_state_dict

A = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
B = {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}
BODY = np.arange(4, dtype="<f4").tobytes()  # a's 8 bytes, then b's


def raw_safetensors(path, header, body=BODY):
    """A .safetensors file of exactly this header (a dict, or its JSON text as bytes) and data."""
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + body)
    return path


def refused(call, message):
    """The CheckpointError `call` raises, once it is one line with `message` in it."""
    with pytest.raises(CheckpointError) as raised:
        call()
    text = str(raised.value)
    assert message in text and "\n" not in text, text
    return text


def test_a_header_that_tells_the_truth_reads(tmp_path):
    arrays, metadata = read_safetensors(raw_safetensors(tmp_path / "x.safetensors", {
        "a": A, "b": B, "empty": {"dtype": "F32", "shape": [0, 3], "data_offsets": [16, 16]},
        "__metadata__": {"format": "pt"}}))
    np.testing.assert_array_equal(arrays["b"], [2, 3])
    assert arrays["empty"].shape == (0, 3) and metadata == {"format": "pt"}


@pytest.mark.parametrize("header, body, message", [
    ({"a": {**A, "data_offsets": [0.0, 8.0]}, "b": B}, BODY, "a: data_offsets [0.0, 8.0] are not [begin, end]"),
    ({"a": {**A, "data_offsets": [-8, 0]}, "b": B}, BODY, "a: data_offsets [-8, 0] are not [begin, end]"),
    ({"a": {**A, "data_offsets": [8, 0]}, "b": B}, BODY, "begin at most end"),
    ({"a": {**A, "data_offsets": [False, 8]}, "b": B}, BODY, "a: data_offsets [false, 8]"),
    ({"a": {**A, "data_offsets": [0, 8, 16]}, "b": B}, BODY, "a: data_offsets [0, 8, 16]"),
    ({"a": {**A, "data_offsets": "0-8"}, "b": B}, BODY, "a: data_offsets \"0-8\""),
    ({"a": A, "b": {**B, "shape": [4], "data_offsets": [8, 24]}}, BODY,
     "b: its bytes 8-24 lie past the end of its data"),
    ({"a": A, "b": {**B, "data_offsets": [0, 8]}}, BODY, "b and a share bytes 0-8"),
    ({"a": A, "b": {**B, "data_offsets": [4, 12]}}, BODY, "b and a share bytes 4-8"),
    ({"a": A, "b": {**B, "data_offsets": [16, 24]}}, BODY + bytes(8), "bytes 8-16 of its data belong to no tensor"),
    ({"a": A, "b": B}, BODY + bytes(4), "bytes 16-20 of its data belong to no tensor"),
    ({"a": A}, BODY, "bytes 8-16 of its data belong to no tensor"),
    ({"a": {**A, "dtype": "F8"}, "b": B}, BODY, "a: dtype \"F8\" is not read here"),
    ({"a": {**A, "dtype": ["F32"]}, "b": B}, BODY, "a: dtype [\"F32\"] is not read here"),
    ({"a": {**A, "shape": [3]}, "b": B}, BODY, "a: its bytes 0-8 do not fit shape [3] of F32"),
    ({"a": {**A, "shape": [-2, -1]}, "b": B}, BODY, "a: shape [-2, -1] is not a list of whole numbers"),
    ({"a": {**A, "shape": [2.0]}, "b": B}, BODY, "a: shape [2.0] is not a list of whole numbers"),
    ({"a": {**A, "shape": [True, 2]}, "b": B}, BODY, "a: shape [true, 2] is not a list of whole numbers"),
    ({"a": {**A, "shape": "2"}, "b": B}, BODY, "a: shape \"2\" is not a list"),
    ({"a": {"dtype": "F32", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}, b"", "is too large for numpy"),
    ({"a": {"dtype": "F32", "shape": [2]}, "b": B}, BODY, "a: not an entry of dtype, shape and data_offsets"),
    ({"a": [0, 8], "b": B}, BODY, "a: not an entry of dtype, shape and data_offsets"),
    ({"a": A, "b": B, "__metadata__": {"num_heads": 2}}, BODY, "its __metadata__ is not a table of texts"),
    ({"a": A, "b": B, "__metadata__": ["x"]}, BODY, "its __metadata__ is not a table of texts"),
    ([A, B], BODY, "its header is not a table of tensors"),
    (b'{"a": %s, "a": %s}' % (json.dumps(A).encode(), json.dumps(B).encode()), BODY, "its header names a twice"),
    (b'{"a": {"dtype": "F32", ', BODY, "its header is not JSON"),
    (b'{"caf\xe9": 1}', BODY, "its header is not JSON"),
    (b"[" * 100_000, BODY, "its header is not JSON"),
], ids=["float-offsets", "negative-offsets", "reversed-offsets", "bool-offsets", "three-offsets", "text-offsets",
        "past-the-end", "same-bytes", "overlapping-bytes", "gap", "bytes-left-over", "bytes-of-no-tensor",
        "unknown-dtype", "dtype-not-text", "shape-against-bytes", "negative-shape", "float-shape", "bool-shape",
        "shape-of-text", "shape-too-large", "missing-field", "entry-not-a-table", "metadata-number",
        "metadata-list", "header-a-list", "repeated-name", "header-cut-short", "header-not-utf8", "header-nested"])
def test_a_safetensors_header_that_lies_is_refused_in_one_line(tmp_path, header, body, message):
    path = raw_safetensors(tmp_path / "model.safetensors", header, body)
    text = refused(lambda: read_safetensors(path), message)
    assert text.startswith(f"{path} is not a readable .safetensors file")


@pytest.mark.parametrize("stated", [10**6, 1, 2**64 - 1], ids=["past-the-end", "too-short", "largest"])
def test_a_header_length_that_does_not_fit_the_file_is_refused(tmp_path, stated):
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", stated) + b"{}")
    refused(lambda: read_safetensors(path), "the length it states does not fit the file")


# ---- timm files: the heads count and the config.json beside them ----

@pytest.fixture(scope="module")
def timm_files():
    """A ViT-test (16 wide, 2 heads, exact GELU) as timm's state dict, and a model to load it into."""
    model = vit_tf.build_vit("vit_test", num_classes=5, approximate_gelu=False)
    return timm_state_dict(model), model


def load_timm(tmp_path, timm_files, state=None, metadata=None, config=None):
    state, model = timm_files[0] if state is None else state, timm_files[1]
    path = tmp_path / "model.safetensors"
    write_safetensors(path, state, metadata)
    if config is not None:
        (tmp_path / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return vit_tf.load_pretrained(model, path, keep_head=True)


def test_a_timm_file_whose_description_tells_the_truth_loads(tmp_path, timm_files):
    config = {"architecture": "vit_tiny_patch4_32", "num_classes": 5, "num_features": 16, "global_pool": "token",
              "model_args": {"embed_dim": 16, "depth": 2, "num_heads": 2}, "pretrained_cfg": {"mean": [0.5] * 3}}
    report = load_timm(tmp_path, timm_files, metadata={"format": "pt", "num_heads": 2}, config=config)
    assert any("2 attention heads" in line for line in report.describe())


@pytest.mark.parametrize("heads, message", [
    ("0", "its metadata gives num_heads as '0'; it must be a whole number of at least 1"),
    ("-2", "its metadata gives num_heads as '-2'"),
    ("2.0", "its metadata gives num_heads as '2.0'"),
    ("two", "its metadata gives num_heads as 'two'"),
    ("3", "3 heads do not divide its hidden size 16"),
    ("32", "32 heads do not divide its hidden size 16"),
])
def test_metadata_that_lies_about_the_heads_is_refused(tmp_path, timm_files, heads, message):
    refused(lambda: load_timm(tmp_path, timm_files, metadata={"num_heads": heads}), message)


@pytest.mark.parametrize("config, message", [
    ({"num_heads": "2"}, "config.json gives num_heads as \"2\", not a whole number"),
    ({"num_heads": True}, "config.json gives num_heads as true, not a whole number"),
    ({"num_heads": 2.5}, "config.json gives num_heads as 2.5, not a whole number"),
    ({"num_heads": 0}, "config.json gives num_heads as 0; it must be at least 1"),
    ({"num_heads": 3}, "3 heads do not divide its hidden size 16"),
    ({"model_args": [2]}, "config.json gives model_args as [2], not a table"),
    ({"model_args": {"num_heads": -2}}, "config.json (model_args) gives num_heads as -2; it must be at least 1"),
    ({"model_args": {"embed_dim": "16"}}, "config.json (model_args) gives embed_dim as \"16\", not a whole number"),
    ({"num_classes": -5}, "config.json gives num_classes as -5; it must be at least 0"),
    ({"num_features": [16]}, "config.json gives num_features as [16], not a whole number"),
    ({"depth": False}, "config.json gives depth as false, not a whole number"),
    ({"architecture": ["vit_small_patch16_224"]}, "config.json gives architecture as [\"vit_small_patch16_224\"], "
                                                  "not text"),
    ({"global_pool": 1}, "config.json gives global_pool as 1, not text"),
    ({"global_pool": "map"}, "pools with timm's global_pool='map'"),
    ([2], "config.json, beside the weights, is not a table of a timm model's arguments"),
    ("{\"num_heads\": 2", "config.json, beside the weights, is not readable JSON"),
], ids=["heads-text", "heads-bool", "heads-float", "heads-zero", "heads-not-dividing", "model-args-list",
        "model-args-negative", "embed-dim-text", "classes-negative", "features-list", "depth-bool",
        "architecture-list", "pool-number", "pool-unknown", "not-a-table", "not-json"])
def test_a_config_json_that_lies_is_refused(tmp_path, timm_files, config, message):
    refused(lambda: load_timm(tmp_path, timm_files, config=config), message)


@pytest.mark.parametrize("damage, message", [
    (lambda s: {**s, "blocks.0.attn.qkv.weight": s["blocks.0.attn.qkv.weight"][:, :8]},
     "blocks.0.attn.qkv.weight has shape (48, 8), not (48, 16)"),
    (lambda s: {**s, "blocks.1.attn.proj.weight": s["blocks.1.attn.proj.weight"].ravel()},
     "blocks.1.attn.proj.weight has shape (256,), not (16, 16)"),
    (lambda s: {**s, "pos_embed": s["pos_embed"][0]}, "pos_embed has shape (65, 16), not 3 axes"),
    (lambda s: {**s, "patch_embed.proj.weight": s["patch_embed.proj.weight"].reshape(16, -1)},
     "patch_embed.proj.weight has shape (16, 48), not timm's (D, 3, P, P)"),
    (lambda s: {key: value for key, value in s.items() if key != "patch_embed.proj.bias"},
     "has no patch_embed.proj.bias, which a timm ViT has"),
    (lambda s: {**s, "module.norm.bias": s["norm.bias"]}, "has keys both with and without the prefix module."),
    (lambda s: {**s, "pos_embed": s["pos_embed"][:, :1]}, "which does not fit"),
    (lambda s: {**s, "norm.weight": np.full(16, np.nan, np.float32)},
     "Transformer/encoder_norm/scale holds NaN or infinite values"),
], ids=["qkv-shape", "proj-flat", "pos-embed-2d", "patch-2d", "missing-bias", "module-prefix-twice",
        "no-patch-rows", "nan"])
def test_a_timm_state_dict_of_the_wrong_shapes_is_refused(tmp_path, timm_files, damage, message):
    state = damage(dict(timm_files[0]))
    refused(lambda: load_timm(tmp_path, timm_files, state=state), message)


def test_train_py_answers_a_lying_file_in_one_line_before_the_data_loads(tmp_path, timm_files):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, timm_files[0], {"num_heads": 0})
    line = one_line_error(run_train("--preset", "vit_test", "--pretrained", path, "--data-dir", tmp_path / "missing",
                                    "--run-dir", tmp_path / "run"))
    assert "its metadata gives num_heads as '0'" in line


# ---- the authors' .npz files and BiT's ----

def npy_member(shape, data):
    """The bytes of an .npy file whose header says `shape` (of float32), whatever `data` holds."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


@pytest.mark.parametrize("damage, message", [
    (lambda a: a.update({"Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel": np.zeros(
        (16, 16), np.float32)}), "query/kernel has shape (16, 16); the released layout is (D, heads, D_h)"),
    (lambda a: a.update({"Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel": np.zeros(512, np.float32)}),
     "Dense_0/kernel has shape (512,); the released layout is (D, MLP)"),
    (lambda a: a.update({"Transformer/encoderblock_1/MultiHeadDotProductAttention_1/key/kernel": np.zeros(
        (16, 2, 9), np.float32)}), "key/kernel has shape (16, 2, 9), which does not fit"),
    (lambda a: a.update({"Transformer/posembed_input/pos_embedding": np.zeros((65, 16), np.float32)}),
     "pos_embedding has shape (65, 16), which does not fit"),
    (lambda a: a["embedding/bias"].__setitem__(3, np.inf), "embedding/bias holds NaN or infinite values"),
    (lambda a: a.update({"head/bias": np.full(10, 1e300)}), "head/bias holds NaN or infinite values (or numbers past "
                                                            "float32's range)"),
    (lambda a: a.update({"Transformer/encoderblock/LayerNorm_0/scale": np.float32(1)}),
     "Transformer/encoderblock/LayerNorm_0/scale holds one number, not blocks stacked"),
    (lambda a: a.update({"Transformer/encoderblock/LayerNorm_0/scale": np.ones((2, 16), np.float32)}),
     "has Transformer/encoderblock_0/LayerNorm_0/scale both on its own and in Transformer/encoderblock/"),
], ids=["query-2d", "mlp-1d", "key-size", "positions-2d", "infinite", "past-float32", "stacked-number",
        "stacked-and-flat"])
def test_an_npz_whose_arrays_do_not_fit_their_layout_is_refused(tmp_path, damage, message):
    arrays = vit_arrays()
    damage(arrays)
    model = vit_tf.build_vit("vit_test", num_classes=10)
    refused(lambda: vit_tf.load_pretrained(model, write(tmp_path / "damaged.npz", arrays), keep_head=True), message)


@pytest.mark.parametrize("member, data, message", [
    ("notes.txt", b"trained on Tuesday", "holds notes.txt, which is not a numpy array"),
    ("cls.npy", npy_member((1000,), bytes(16)), "is not a readable .npz checkpoint"),
    ("cls.npy", npy_member((2**40, 2**40), bytes(16)), "is not a readable .npz checkpoint"),
], ids=["not-an-array", "shorter-than-its-header", "header-past-memory"])
def test_an_npz_member_that_is_not_what_it_says_is_refused(tmp_path, member, data, message):
    arrays = vit_arrays()
    arrays.pop(member.removesuffix(".npy"), None)
    path = write(tmp_path / "damaged.npz", arrays)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(member, data)
    refused(lambda: vit_tf.check_compatible(path, vit_tf.resolve_config("vit_test")), message)


def test_a_bit_file_whose_root_kernel_is_not_a_convolution_is_refused(tmp_path):
    arrays = bit_arrays()
    arrays["resnet/root_block/standardized_conv2d/kernel"] = np.zeros(32, np.float32)
    path = write(tmp_path / "bit.npz", arrays)
    refused(lambda: cnn_baseline.check_compatible(path, cnn_baseline.resolve_config("bit_test")),
            "root_block/standardized_conv2d/kernel has shape (32,); the released layout is (7, 7, 3, width)")


# ---- keras-hub preset folders: the config.json keras-hub builds the model from ----

BACKBONE = {"image_shape": [32, 32, 3], "patch_size": 8, "num_layers": 2, "num_heads": 3, "hidden_dim": 24,
            "mlp_dim": 48}


@pytest.mark.parametrize("settings, message", [
    (None, "config.json has no table of the backbone's settings under \"config\""),
    ([2, 3], "config.json has no table of the backbone's settings"),
    ({**BACKBONE, "num_heads": "3"}, "config.json gives num_heads as \"3\", not a whole number"),
    ({**BACKBONE, "num_layers": True}, "config.json gives num_layers as true, not a whole number"),
    ({**BACKBONE, "hidden_dim": 0}, "config.json gives hidden_dim as 0; it must be at least 1"),
    ({**BACKBONE, "mlp_dim": -48}, "config.json gives mlp_dim as -48; it must be at least 1"),
    ({key: value for key, value in BACKBONE.items() if key != "mlp_dim"}, "config.json has no mlp_dim"),
    ({**BACKBONE, "use_mha_bias": "false"}, "config.json gives use_mha_bias as \"false\", not true or false"),
    ({**BACKBONE, "use_class_token": 1}, "config.json gives use_class_token as 1, not true or false"),
    ({**BACKBONE, "num_heads": 5}, "config.json: num_heads 5 does not divide hidden_dim 24"),
    ({**BACKBONE, "hidden_dim": 30_000, "num_heads": 3}, "describes an encoder of at least 7,205,760,000 weights, "
                                                         "more than model.weights.h5 (100,000 bytes) holds"),
    ({**BACKBONE, "patch_size": 5}, "config.json describes no ViTBackbone keras-hub can build"),
], ids=["no-settings", "settings-list", "heads-text", "layers-bool", "width-zero", "mlp-negative", "mlp-missing",
        "switch-text", "switch-number", "heads-not-dividing", "larger-than-its-file", "keras-hub-refuses"])
def test_a_keras_hub_config_that_lies_is_refused_before_keras_hub_builds_it(tmp_path, settings, message):
    pytest.importorskip("keras_hub")
    folder = tmp_path / "preset"
    folder.mkdir()
    config = {"class_name": "ViTBackbone", "module": "keras_hub.src.models.vit.vit_backbone"}
    (folder / "config.json").write_text(json.dumps(config if settings is None else {**config, "config": settings}))
    (folder / "model.weights.h5").write_bytes(bytes(100_000))  # never read: the config is refused first
    architecture = vit_tf.resolve_config("vit_test", patch_size=8, hidden_dim=24, num_heads=3, mlp_dim=48,
                                         approximate_gelu=False)
    refused(lambda: vit_tf.check_compatible(folder, architecture), message)

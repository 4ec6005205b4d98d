"""Exporting a finished run for serving, with Keras' own `model.export`: a TensorFlow SavedModel or an ONNX
file; or for timm, a ViT's weights as timm's state dict. Each is checked to give the .keras model's logits
in its own runtime before it is handed over.

SavedModel and ONNX go through TensorFlow (ONNX through tf2onnx), so they need the TensorFlow backend; timm's
needs timm and PyTorch. The .keras file itself is the same on every backend.
"""

import importlib
import importlib.util
import os
import pathlib
import shutil
import tempfile
import warnings

import numpy as np

from harness.atomic import staging_folder_beside
from harness.backend import chosen_backend
from harness.errors import UserError
from harness.training.run_dir import check_writable, load_model, open_finished_run, write_json

# --format -> (Keras' name for it, what it needs installed, the file or folder written inside the export folder)
FORMATS = {"saved_model": ("tf_saved_model", ("tensorflow",), "saved_model"),
           "onnx": ("onnx", ("tf2onnx", "onnxruntime"), "model.onnx"),
           "timm": (None, ("timm", "torch"), "model.safetensors")}
INSTALL = {"saved_model": "requirements-export.txt", "onnx": "requirements-export.txt",
           "timm": "requirements-peers.txt"}
CHECK_IMAGES = 8  # images the exported model must agree on with model.keras
TOLERANCE = 1e-4  # of the largest logit: float32 round-off between graph optimisers, nothing more


def check_export(folder, export_format, model="vit"):
    """One line, before Keras loads, if the export cannot happen: backend, model, packages, or folder."""
    backend = chosen_backend()
    if export_format == "timm":
        if model != "vit":
            raise UserError(f"--format timm exports a ViT into timm's VisionTransformer; this run's model is the "
                            f"{model} (use onnx or saved_model)")
    elif backend != "tensorflow":
        raise UserError(f"--export goes through TensorFlow, and KERAS_BACKEND={backend} never loads it; run "
                        "evaluate.py with KERAS_BACKEND=tensorflow (model.keras is the same on every backend)")
    missing = [name for name in FORMATS[export_format][1] if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"--format {export_format} needs {', '.join(missing)}: pip install -r {INSTALL[export_format]}")
    path = pathlib.Path(folder)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"--export {folder} already exists and is not an empty folder; choose a new one")
    check_writable(path, "--export folder")


def export_run(run_dir, folder, export_format):
    """Writes FOLDER/model.onnx or FOLDER/saved_model/ and FOLDER/export.json; returns export.json's content.

    The files appear together at the end: a failed export leaves no folder that looks finished.
    """
    import keras  # here: evaluate.py checks its options with this module before Keras loads

    from harness.training.manifest import library_versions

    run, config = open_finished_run(run_dir)
    model = load_model(run)
    size = config["image_size"]
    images = np.random.default_rng(0).uniform(0, 255, (CHECK_IMAGES, size, size, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images))  # also marks the model as called, which export needs
    keras_format, _, artifact = FORMATS[export_format]

    target = pathlib.Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    # An empty folder that exists (perhaps a mount point) is never removed: the files are made inside it and
    # moved into place; a new folder is made beside its place and renamed to it whole.
    given = target.is_dir()
    staging = (pathlib.Path(tempfile.mkdtemp(prefix=".export-partial-", dir=target)) if given
               else staging_folder_beside(target, "."))
    rebuild = {}
    try:
        if export_format == "timm":
            exported, expected, rebuild = _export_timm(model, staging / artifact, images, expected)
        else:
            with warnings.catch_warnings():  # tf2onnx's deprecation notices about numpy
                warnings.simplefilter("ignore")
                model.export(str(staging / artifact), format=keras_format, verbose=False)
            exported = _run_exported(staging / artifact, export_format, images)
        difference = float(np.abs(exported - expected).max())
        if not difference <= TOLERANCE * max(1.0, float(np.abs(expected).max())):
            raise UserError(f"the exported model's logits differ from model.keras's by {difference:.3g}; "
                            "nothing was written. Please report this with the run's manifest.json")
        summary = {
            "format": export_format, "file": artifact, "run": str(run.path), "model": config["model"],
            "preset": config["preset"],
            "input": {"name": "images", "shape": [None, size, size, 3], "dtype": "float32",
                      "pixels": "RGB in [0, 255]; the model rescales them itself"},
            "output": {"name": "logits", "shape": [None, len(config["class_names"])],
                       "meaning": "logits; softmax gives class probabilities"},
            "class_names": config["class_names"],
            "check": {"images": CHECK_IMAGES, "max_abs_logit_difference": difference},
            **rebuild,
            "versions": {**library_versions(), **_exporter_versions(export_format)},
        }
        write_json(staging / "export.json", summary)
        if given:  # export.json last: the folder looks finished only once everything is in it
            for entry in sorted(staging.iterdir(), key=lambda path: path.name == "export.json"):
                os.replace(entry, target / entry.name)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _run_exported(path, export_format, images):
    """The exported model's logits, run by its own runtime (ONNX Runtime, or TensorFlow's SavedModel loader)."""
    if export_format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: images})[0]
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # held: its functions need its variables alive
    return loaded.serve(images).numpy()


def _export_timm(model, path, images, expected):
    """Writes the timm state dict; returns (timm's logits, ours to compare them with, export.json's "timm")."""
    import keras

    from harness.timm_import import import_timm
    from model_parts.safetensors_file import write_safetensors
    from vit_tf.checkpoint import CheckpointError
    from vit_tf.timm_weights import timm_arguments, timm_state_dict

    try:
        kind, arguments = timm_arguments(model)
    except CheckpointError as error:
        raise UserError(str(error)) from None
    state = timm_state_dict(model)
    write_safetensors(path, state, {"format": "pt", "num_heads": arguments["num_heads"]})
    timm = import_timm()
    import torch
    from safetensors.torch import load_file

    module, name = kind.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**arguments).eval()
    rebuilt.load_state_dict(load_file(path))
    with torch.no_grad():
        exported = rebuilt(torch.from_numpy(images / 127.5 - 1).permute(0, 3, 1, 2)).numpy()
    heads = [model.get_layer(name).output for name in ("head", "head_distillation")
             if name in {layer.name for layer in model.layers}]
    # a distilled model: timm averages the two heads' logits, ours their softmax (DeiT's paper); compare the heads
    if len(heads) > 1:
        expected = np.mean([keras.ops.convert_to_numpy(logits) for logits in keras.Model(model.input, heads)(images)],
                           axis=0)
    pixels = "RGB / 127.5 - 1, i.e. timm's mean 0.5, std 0.5, channels first (N, 3, H, W)"
    return exported, expected, {"timm": {"class": kind, "arguments": arguments, "version": timm.__version__,
                                         "input": pixels}}


def _exporter_versions(export_format):
    if export_format != "onnx":
        return {}
    import onnxruntime
    import tf2onnx

    return {"tf2onnx": tf2onnx.__version__, "onnxruntime": onnxruntime.__version__}

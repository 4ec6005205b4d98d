"""The model families the harness trains, behind one interface."""

import dataclasses
from typing import Callable

import cnn_baseline
import vit_tf


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    build: Callable  # build(preset, image_size=..., num_classes=..., **overrides) -> keras.Model
    resolve_config: Callable  # same arguments -> dict of every architecture setting
    parameter_breakdown: Callable  # model -> {component: parameter count}
    flops_per_image: Callable  # model -> forward-pass FLOPs of one image (2 per multiply-add)
    presets: dict
    default_preset: str


MODEL_FAMILIES = {
    "vit": ModelFamily(vit_tf.build_vit, vit_tf.resolve_config, vit_tf.parameter_breakdown, vit_tf.flops_per_image,
                       vit_tf.PRESETS, vit_tf.DEFAULT_PRESET),
    "cnn": ModelFamily(cnn_baseline.build_cnn, cnn_baseline.resolve_config, cnn_baseline.parameter_breakdown,
                       cnn_baseline.flops_per_image, cnn_baseline.PRESETS, cnn_baseline.DEFAULT_PRESET),
}

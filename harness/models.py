"""The model families the harness trains, behind one interface.

A family's presets and `resolve_config` are plain data; building, counting parameters and FLOPs
load Keras on first use, so the command lines stay fast until they train.
"""

import dataclasses
import types

import cnn_baseline
import vit_tf


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    package: types.ModuleType  # vit_tf or cnn_baseline
    builder: str  # the name of its build function

    @property
    def presets(self):
        return self.package.PRESETS

    @property
    def default_preset(self):
        return self.package.DEFAULT_PRESET

    def build(self, preset, **settings):
        """build(preset, image_size=..., num_classes=..., **overrides) -> keras.Model"""
        return getattr(self.package, self.builder)(preset, **settings)

    def resolve_config(self, preset, *args, **settings):
        """The same arguments as `build` -> a dict of every architecture setting, validated."""
        return self.package.resolve_config(preset, *args, **settings)

    def parameter_breakdown(self, model):
        """{component: parameter count}"""
        return self.package.parameter_breakdown(model)

    def flops_per_image(self, model):
        """Forward-pass FLOPs of one image (2 per multiply-add)."""
        return self.package.flops_per_image(model)

    def activations_per_image(self, model):
        """About how many values training keeps per image for the backward pass."""
        return self.package.activations_per_image(model)


MODEL_FAMILIES = {"vit": ModelFamily(vit_tf, "build_vit"), "cnn": ModelFamily(cnn_baseline, "build_cnn")}

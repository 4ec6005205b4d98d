"""The model families the harness trains, behind one interface: the paper's three (section 4.1).

    vit     the Vision Transformer on pixel patches (vit_tf)
    hybrid  the ViT on the feature map of a ResNet stem (vit_tf, its hybrid presets)
    cnn     the ResNet baselines: BatchNorm pre-activation ResNets and BiT's ResNet-v2 (cnn_baseline)

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
    preset_names: tuple  # the package's presets that belong to this family
    default_preset: str

    @property
    def presets(self):
        return {name: self.package.PRESETS[name] for name in self.preset_names}

    @property
    def transformer(self):
        """Whether the model is a ViT (plain or hybrid): tokens, attention maps, ViT options."""
        return self.package is vit_tf

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

    def adapt_to_data(self, model, images):
        """Sets the weights that are computed from the training images (N, H, W, 3) rather than learned: the
        fast CNN's whitening filters. Other models have none."""
        adapt = getattr(self.package, "adapt_to_data", None)
        if adapt is not None:
            adapt(model, images)

    def check_pretrained(self, path, architecture):
        """A CheckpointError unless the released file at `path` fits `architecture` (a `resolve_config` dict)."""
        self.package.check_compatible(path, architecture)

    def load_pretrained(self, model, path):
        """Loads a released checkpoint for fine-tuning (a new zero head); returns a LoadReport."""
        return self.package.load_pretrained(model, path)


MODEL_FAMILIES = {
    "vit": ModelFamily(vit_tf, "build_vit", tuple(name for name in vit_tf.PRESETS if name not in vit_tf.HYBRID_PRESETS),
                       vit_tf.DEFAULT_PRESET),
    "hybrid": ModelFamily(vit_tf, "build_vit", tuple(vit_tf.HYBRID_PRESETS), "hybrid_cifar_tiny"),
    "cnn": ModelFamily(cnn_baseline, "build_cnn", tuple(cnn_baseline.PRESETS), cnn_baseline.DEFAULT_PRESET),
}

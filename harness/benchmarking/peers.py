"""What a student would train instead of our ViT and ResNet, timed as its users run it (benchmark.py --peers).

keras-hub's `ViTBackbone` with a head on the class token, on the Keras backend benchmark.py runs on,
compiled by `fit` as its users leave it (jit_compile "auto"); timm's `VisionTransformer`, or for a cnn
preset timm's `ResNetV2` (pre-activation, as ours; BatchNorm with a 3x3 stem, as CIFAR users rebuild it, or
BiT's), in PyTorch with the training loop its users write, eagerly ("timm") or through `torch.compile`
("timm-compile"). Each gets the dimensions of one of our presets, AdamW, cross-entropy and the same random
images as ours; benchmark.py measures each in a process of its own (a timm process starts Keras on PyTorch).
"""

import dataclasses
import time

import keras

from harness.benchmarking.measure import Measurement, best_seconds
from harness.benchmarking.synthetic import timing_splits
from harness.models import MODEL_FAMILIES
from harness.timm_import import import_timm
from harness.training import inputs


def run_peer(kind, preset, settings):
    """One peer row (`kind`:`preset`), measured in this process with `settings` (a RowSettings; the options for
    ours only do not apply)."""
    family = "vit" if preset in MODEL_FAMILIES["vit"].presets else "cnn"
    architecture = MODEL_FAMILIES[family].resolve_config(preset)
    split, eval_split = timing_splits(settings, architecture["image_size"])
    if kind == "keras-hub":
        measurement = _keras_hub(preset, architecture, split, eval_split, settings)
    else:
        build = _timm_vit if family == "vit" else _timm_resnet
        measurement = _timm(kind, preset, build(architecture, settings.num_classes), split, eval_split, settings)
    return dataclasses.replace(measurement, gelu="exact" if family == "vit" else None)  # both peers' ViTs use erf


def _keras_hub(preset, architecture, split, eval_split, settings):
    import keras_hub

    from harness.benchmarking.measure import measure
    from harness.training.precision import resolve_precision

    resolved = resolve_precision(settings.precision)
    num_classes = settings.num_classes
    keras.mixed_precision.set_global_policy(resolved)
    size = architecture["image_size"]
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(size, size, 3), patch_size=architecture["patch_size"], num_layers=architecture["num_layers"],
        num_heads=architecture["num_heads"], hidden_dim=architecture["hidden_dim"], mlp_dim=architecture["mlp_dim"])
    images = keras.Input((size, size, 3))
    tokens = backbone(keras.layers.Rescaling(1 / 127.5, offset=-1.0)(images))
    logits = keras.layers.Dense(num_classes, dtype="float32")(tokens[:, 0])
    model = keras.Model(images, logits)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    data = inputs.training_batches(split, num_classes, settings.batch_size, range(1), seed=0, deterministic=False)
    return measure(f"keras-hub:{preset}", model, model, data, eval_split, settings, resolved,
                   f"{inputs.pipeline_name(on_device=False)}; no augmentation", flops=None)


def _timm_vit(architecture, num_classes):
    return import_timm().models.vision_transformer.VisionTransformer(
        img_size=architecture["image_size"], patch_size=architecture["patch_size"], num_classes=num_classes,
        embed_dim=architecture["hidden_dim"], depth=architecture["num_layers"], num_heads=architecture["num_heads"],
        mlp_ratio=architecture["mlp_dim"] / architecture["hidden_dim"], global_pool="token")


def _timm_resnet(architecture, num_classes):
    """timm's ResNet-v2 with our preset's stages: BiT's as timm has it, or the BatchNorm basic-block one with
    ImageNet's 7x7/2 stem and max-pool replaced by one 3x3 convolution, as CIFAR users of timm do."""
    from functools import partial

    import torch

    timm = import_timm()
    layers = list(architecture["blocks_per_stage"])
    if architecture["architecture"] == "bit":
        root = architecture["root_width"]
        return timm.models.resnetv2.ResNetV2(
            layers=layers, channels=tuple(4 * root * 2**stage for stage in range(len(layers))), stem_chs=root,
            stem_type="fixed", conv_layer=partial(timm.layers.StdConv2d, eps=1e-8),
            norm_layer=partial(timm.layers.GroupNormAct, num_groups=32), num_classes=num_classes)
    model = timm.models.resnetv2.ResNetV2(
        layers=layers, channels=tuple(architecture["stage_widths"]), stem_chs=architecture["stem_width"], basic=True,
        bottle_ratio=1.0, conv_layer=timm.layers.create_conv2d, norm_layer=timm.layers.BatchNormAct2d,
        num_classes=num_classes)
    model.stem = torch.nn.Sequential(torch.nn.Conv2d(3, architecture["stem_width"], 3, padding=1, bias=False))
    return model


def _timm(kind, preset, model, split, eval_split, settings):
    import resource

    import torch

    from harness.training.precision import resolve_precision

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # The precision ours trains in (this process runs Keras on PyTorch, so it resolves the same way), by autocast
    precision = resolve_precision(settings.precision)
    batch_size = settings.batch_size
    half = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device, enabled=half == torch.float16)  # as Keras scales float16 losses
    model = model.to(device)
    forward = torch.compile(model) if kind == "timm-compile" else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    loss_function = torch.nn.CrossEntropyLoss()

    def batches(images, labels):
        for start in range(0, len(images) - batch_size + 1, batch_size):
            x = torch.from_numpy(images[start:start + batch_size]).to(device).permute(0, 3, 1, 2).float()
            yield x / 127.5 - 1.0, torch.from_numpy(labels[start:start + batch_size]).to(device).long()

    def autocast():
        return torch.autocast(device, dtype=half or torch.bfloat16, enabled=half is not None)

    def train(count):
        model.train()
        started = time.perf_counter()
        for step, (x, y) in enumerate(batches(split.images, split.labels)):
            if step == count:
                break
            with autocast():
                loss = loss_function(forward(x), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        loss.item()  # waits for the last step
        return time.perf_counter() - started

    def predict():
        model.eval()
        started = time.perf_counter()
        with torch.inference_mode(), autocast():
            outputs = [forward(x) for x, _ in batches(eval_split.images, eval_split.labels)]
        outputs[-1].cpu()
        return time.perf_counter() - started

    # (torch.compile: the first inference compiles too)
    train_seconds, eval_seconds = best_seconds(train, predict, settings.warmup_steps, settings.steps)
    return Measurement(
        name=f"{kind}:{preset}", params=keras_count(model),
        batch_size=batch_size, precision=precision, jit_compile=kind == "timm-compile",
        train_images_per_second=round(settings.steps * batch_size / train_seconds, 1),
        eval_images_per_second=round(len(eval_split) / eval_seconds, 1),
        forward_gflops_per_image=None, mfu=None,
        accelerator_peak_mib=torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        host_peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        input_pipeline=f"PyTorch {'torch.compile' if kind == 'timm-compile' else 'eager'}; no augmentation")


def keras_count(model):
    """A PyTorch model's parameters as Keras counts them: with BatchNorm's moving statistics (buffers here)."""
    statistics = [buffer for name, buffer in model.named_buffers() if name.endswith(("running_mean", "running_var"))]
    return sum(tensor.numel() for tensor in [*model.parameters(), *statistics])

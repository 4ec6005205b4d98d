"""Where one ViT training step's time goes, part by part, on the TensorFlow backend (docs/benchmarking.md,
"Where the time goes"). Each part runs as its own compiled function on random data of the step's shapes;
best of five after a warm-up, in milliseconds. `--precision mixed_bfloat16` times the same parts in bfloat16
(train.py's `auto` picks it on GPUs; asked for by name it also runs on CPUs with bfloat16 instructions).

    python tools/profile_step.py --preset vit_cifar_tiny --batch-size 128 [--precision mixed_bfloat16]
"""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from harness import backend  # noqa: E402


def best_milliseconds(function, repeats=5):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vit_cifar_tiny")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32")
    args = parser.parse_args()
    backend.start()
    import keras
    import numpy as np
    import tensorflow as tf

    import vit_tf

    if keras.backend.backend() != "tensorflow":
        sys.exit("error: tools/profile_step.py profiles TensorFlow's functions; run it with KERAS_BACKEND=tensorflow")
    keras.mixed_precision.set_global_policy(args.precision)
    model = vit_tf.build_vit(args.preset, num_classes=10)
    size, batch = model.input_shape[1], args.batch_size
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (batch, size, size, 3)).astype("float32"))
    labels = tf.one_hot(rng.integers(0, 10, batch), 10)
    loss_function = keras.losses.CategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.AdamW(1e-3, weight_decay=0.05)
    optimizer.build(model.trainable_variables)

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            loss = loss_function(labels, model(images, training=True))
        return tape.gradient(loss, model.trainable_variables)

    grads = gradients()

    @tf.function
    def step():
        optimizer.apply(gradients(), model.trainable_variables)

    block = model.get_layer("encoder_block_0")
    tokens = tf.random.normal((batch, *block.input.shape[1:]), dtype=block.compute_dtype)

    def forward_backward(part, variables, inputs=tokens):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                total = tf.reduce_sum(part(inputs))
            return tape.gradient(total, [inputs, *variables])
        return run

    attention, mlp = block.attention, block.mlp
    hidden = tf.random.normal((batch, tokens.shape[1], mlp.mlp_dim), dtype=block.compute_dtype)

    blocks = sum(1 for layer in model.layers if layer.name.startswith("encoder_block_"))
    parts = [
        ("whole training step", step),
        ("forward", tf.function(lambda: model(images, training=True))),
        ("forward + backward", gradients),
        ("AdamW update", tf.function(lambda: optimizer.apply(grads, model.trainable_variables))),
        (f"one encoder block, fwd + bwd (x{blocks})", forward_backward(lambda t: block(t, training=True),
                                                                       block.trainable_variables)),
        ("  attention", forward_backward(attention, attention.trainable_variables)),
        ("    its q, k, v, output products alone", forward_backward(  # the same four D x D products, no softmax
            lambda t: attention.output_projection(attention.query(t) + attention.key(t) + attention.value(t)),
            attention.trainable_variables)),
        ("  MLP (with GELU)", forward_backward(mlp, mlp.trainable_variables)),
        ("    its two products alone", forward_backward(lambda t: mlp.dense_out(mlp.dense_in(t)),
                                                       mlp.trainable_variables)),
        ("    its GELU alone", forward_backward(lambda x: keras.activations.gelu(x, approximate=mlp.approximate_gelu),
                                               [], inputs=hidden)),
        ("  one LayerNorm (x2)", forward_backward(block.attention_norm, block.attention_norm.trainable_variables)),
    ]
    print(f"{args.preset}, batch {batch}, {args.precision}, TensorFlow {tf.__version__}, Keras {keras.__version__}: "
          "best of 5, ms")
    for name, function in parts:
        print(f"{name:40s} {best_milliseconds(function):8.1f}")


if __name__ == "__main__":
    main()

"""Prints, as JSON, how a 2-device placement lays out a model's variables and a batch, on whichever backend
KERAS_BACKEND names; run by tests/test_data_parallel.py in a fresh process (devices are fixed at start)."""

import json

from harness.training import devices

devices.start("2")

import numpy as np  # noqa: E402

import vit_tf  # noqa: E402
from harness.training.devices import data_parallel, resolve_placement  # noqa: E402

placement = resolve_placement("2", 8, 8)
with data_parallel(placement):
    import keras

    model = vit_tf.build_vit("vit_test", num_classes=3)
    found = {"placement": placement.describe(), "backend": keras.backend.backend()}
    if found["backend"] == "jax":
        distribution = keras.distribution.distribution()
        shardings = [v.value.sharding for v in model.weights]
        found["variable_devices"] = sorted({len(s.device_set) for s in shardings})
        found["variables_replicated"] = all(s.is_fully_replicated for s in shardings)
        layout = distribution.get_data_layout((8, 32, 32, 3)).backend_layout
        batch = keras.src.backend.jax.distribution_lib.distribute_data_input(
            np.zeros((8, 32, 32, 3), "float32"), layout, distribution.batch_dim_name)
        found["batch_shards"] = sorted(tuple(shard.data.shape) for shard in batch.addressable_shards)
    else:
        import tensorflow as tf

        strategy = tf.distribute.get_strategy()
        found["replicas"] = strategy.num_replicas_in_sync
        found["variable_devices"] = sorted({len(v.value.values) for v in model.weights})
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices(np.zeros((8, 32, 32, 3), "float32")).batch(8))
        found["batch_shards"] = sorted(tuple(t.shape) for t in next(iter(dataset)).values)
print(json.dumps(found))

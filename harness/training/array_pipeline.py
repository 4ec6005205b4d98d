"""In-memory batches as `keras.utils.PyDataset`s, for machines without TensorFlow (JAX or PyTorch only).

They yield the same batches, in the same order, as the tf.data pipeline (`harness.training.tf_pipeline`), which
stays the pipeline wherever TensorFlow is installed. On JAX the training split can live on the accelerator
(`on_device`): each batch is then gathered, converted and mixed there by asynchronously dispatched ops, and
only its indices leave the host.
"""

import keras
import numpy as np

from harness.data import Split
from harness.training.augment import build_mixing
from harness.training.seeding import epoch_order, epoch_seed


def model_inputs(split, indices, num_classes):
    """float32 pixels in [0, 255] and one-hot labels, as the tf.data pipeline gives them."""
    return split.images[indices].astype(np.float32), np.eye(num_classes, dtype=np.float32)[split.labels[indices]]


def process_share(arrays, shard):
    """This process's consecutive slice of each array of a global batch, shard = (index, processes): in a
    multi-host job, each process feeds its part and JAX assembles the global batch."""
    index, count = shard
    if count == 1:
        return arrays
    size = len(arrays[0]) // count
    return tuple(array[index * size : (index + 1) * size] for array in arrays)


class EvaluationBatches(keras.utils.PyDataset):
    """Batches in order, the last one possibly smaller.

    With `multiple` > 1 (data parallelism on JAX, which splits every batch evenly across the devices),
    a batch that does not split is padded with copies of its last image, weighted 0: the metrics
    count only the real images.
    """

    def __init__(self, split: Split, num_classes, batch_size, multiple=1, shard=(0, 1)):
        super().__init__()
        self.split, self.num_classes, self.batch_size, self.multiple = split, num_classes, batch_size, multiple
        self.shard = shard

    def __len__(self):
        return -(-len(self.split) // self.batch_size)

    def __getitem__(self, index):
        indices = np.arange(index * self.batch_size, min((index + 1) * self.batch_size, len(self.split)))
        if self.multiple == 1:
            return model_inputs(self.split, indices, self.num_classes)
        padding = -len(indices) % self.multiple
        weights = np.concatenate([np.ones(len(indices)), np.zeros(padding)]).astype(np.float32)
        images, labels = model_inputs(self.split, np.concatenate([indices, np.full(padding, indices[-1])]),
                                      self.num_classes)
        return process_share((images, labels, weights), self.shard)


class TrainingBatches(keras.utils.PyDataset):
    """Full batches, reshuffled (and mixed) each epoch from (seed, epoch), starting at `first_epoch`.

    With `on_device`, the split's uint8 pixels and labels are put on the default device once, and every
    batch is made there: the same values as from the host, without a float32 copy crossing the bus each
    step or MixUp/CutMix's round trip (Keras' layers run on the device, the host path copies their output back).
    """

    def __init__(self, split: Split, num_classes, batch_size, first_epoch, seed, mixing="none", mixing_alpha=1.0,
                 shard=(0, 1), on_device=False):
        super().__init__()
        self.split, self.num_classes, self.batch_size, self.seed = split, num_classes, batch_size, seed
        self.shard = shard
        self.mixing, self.mixing_alpha = mixing, mixing_alpha
        self.on_device = on_device
        if on_device:
            self.device_images = keras.ops.convert_to_tensor(split.images)
            self.device_labels = keras.ops.convert_to_tensor(split.labels.astype(np.int32))
        self._start_epoch(first_epoch)

    def _start_epoch(self, epoch):
        self.epoch = epoch
        self.order = epoch_order(len(self.split), self.batch_size, self.seed, epoch)
        self.mixer = build_mixing(self.mixing, self.mixing_alpha, seed=epoch_seed(self.seed, epoch))

    def __len__(self):  # the order holds whole batches, or all the images when they are fewer than one batch
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, index):
        indices = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        if self.on_device:
            images, labels = self._device_inputs(indices)
        else:
            images, labels = model_inputs(self.split, indices, self.num_classes)
        if self.mixer is not None:
            mixed = self.mixer({"images": images, "labels": labels})
            images, labels = mixed["images"], mixed["labels"]
            if not self.on_device:  # Keras' layers hand back backend tensors: back to the host
                images, labels = keras.ops.convert_to_numpy(images), keras.ops.convert_to_numpy(labels)
        return (images, labels) if self.on_device else process_share((images, labels), self.shard)

    def _device_inputs(self, indices):
        """model_inputs, gathered and converted on the device from its copy of the split."""
        ops = keras.ops
        indices = ops.convert_to_tensor(indices.astype(np.int32))
        images = ops.cast(ops.take(self.device_images, indices, axis=0), "float32")
        return images, ops.one_hot(ops.take(self.device_labels, indices, axis=0), self.num_classes, dtype="float32")

    def on_epoch_end(self):
        self._start_epoch(self.epoch + 1)

"""DeiT distillation (Touvron et al. 2021): a frozen teacher, a finished run, supervises the ViT's
distillation token through that token's own head.

The model that trains outputs [class logits | distillation logits | teacher logits] (B, 3K): the
augmentation runs once, inside it, so the teacher sees exactly the images the student sees; the
teacher is frozen and in inference mode. The saved model is the student alone, whose output averages
its two heads' softmax outputs (`vit_tf.HeadFusion`).
"""

import keras
from keras import layers, ops

from harness.errors import UserError
from harness.training.run_dir import load_model, open_finished_run
from vit_tf.layers import fuse_heads


def split(y_pred, num_classes):
    return (y_pred[:, :num_classes], y_pred[:, num_classes:2 * num_classes], y_pred[:, 2 * num_classes:])


@keras.saving.register_keras_serializable(package="harness")
class DistillationLoss(keras.losses.Loss):
    """DeiT's objective on y_pred = [class | distillation | teacher] logits and one-hot (or mixed) labels.

    hard: (1 - alpha) CE_smoothed(class head, label) + alpha CE(distillation head, the teacher's argmax)
          (alpha = 1/2 is DeiT's hard-label distillation)
    soft: (1 - alpha) CE_smoothed(class head, label)
          + alpha T^2 KL(softmax(teacher / T) || softmax(distillation head / T))   (DeiT: alpha 0.1, T 3)
    """

    def __init__(self, kind="hard", alpha=0.5, temperature=3.0, label_smoothing=0.0, name="distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.kind, self.alpha, self.temperature, self.label_smoothing = kind, alpha, temperature, label_smoothing

    def call(self, y_true, y_pred):
        num_classes = y_true.shape[-1]
        class_logits, distillation_logits, teacher_logits = split(y_pred, num_classes)
        true_part = keras.losses.categorical_crossentropy(y_true, class_logits, from_logits=True,
                                                          label_smoothing=self.label_smoothing)
        if self.kind == "hard":
            teacher_labels = ops.one_hot(ops.argmax(teacher_logits, axis=-1), num_classes)
            teacher_part = keras.losses.categorical_crossentropy(teacher_labels, distillation_logits, from_logits=True)
        else:
            log_teacher = ops.log_softmax(teacher_logits / self.temperature, axis=-1)
            log_student = ops.log_softmax(distillation_logits / self.temperature, axis=-1)
            teacher_part = self.temperature**2 * ops.sum(ops.exp(log_teacher) * (log_teacher - log_student), axis=-1)
        return (1 - self.alpha) * true_part + self.alpha * teacher_part

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "alpha": self.alpha, "temperature": self.temperature,
                "label_smoothing": self.label_smoothing}


def fused(y_pred, num_classes):
    """The student's answer at inference (`vit_tf.HeadFusion`): the average of its two heads' softmax outputs."""
    class_logits, distillation_logits, _ = split(y_pred, num_classes)
    return fuse_heads(class_logits, distillation_logits)


def fused_accuracy(y_true, y_pred):
    return keras.metrics.categorical_accuracy(y_true, fused(y_pred, y_true.shape[-1]))


def fused_cross_entropy(y_true, y_pred):
    return keras.losses.categorical_crossentropy(y_true, fused(y_pred, y_true.shape[-1]), from_logits=True)


def metrics():
    """Accuracy and plain cross-entropy of the student's fused answer, under the names every run uses."""
    return [keras.metrics.MeanMetricWrapper(fused_accuracy, name="accuracy"),
            keras.metrics.MeanMetricWrapper(fused_cross_entropy, name="cross_entropy")]


def load_teacher(run):
    """The model of a finished run (as `check_teacher` returns it), frozen (its BatchNorm layers then
    run in inference mode)."""
    teacher = load_model(run)
    teacher.trainable = False
    return teacher


def trainee(model, teacher, augmentation):
    """The model that trains: augmentation, then the student's two heads and the frozen teacher."""
    heads = keras.Model(model.input, [model.get_layer("head").output, model.get_layer("head_distillation").output],
                        name=f"{model.name}_heads")
    teacher.trainable = False
    images = keras.Input(model.input_shape[1:], name="images")
    x = augmentation(images) if augmentation is not None else images
    class_logits, distillation_logits = heads(x)
    teacher_logits = teacher(x, training=False)
    outputs = layers.Concatenate(dtype="float32", name="student_and_teacher")(
        [class_logits, distillation_logits, teacher_logits])
    return keras.Model(images, outputs, name=f"{model.name}_distillation")


def check_teacher(run_dir, image_size, class_names=None):
    """The teacher run's config, or a one-line UserError when its image size or classes differ."""
    run, config = open_finished_run(run_dir)
    if config["image_size"] != image_size:
        raise UserError(f"the teacher {run.path} takes {config['image_size']} px images and the student "
                        f"{image_size} px; train both at one --image-size")
    if class_names is not None and config["class_names"] != class_names:
        raise UserError(f"the teacher {run.path} was trained on other classes ({', '.join(config['class_names'][:3])}, "
                        f"...) than this data's ({', '.join(class_names[:3])}, ...); give a teacher of these classes")
    return run, config

"""Evaluating a finished run on its test split, and classifying a user's own images."""

import csv
import pathlib
import sys
import time

import keras
import numpy as np

from harness import data
from harness.atomic import folder_written_whole, name_within_limit
from harness.data.folder import printable
from harness.data.images import TOO_LARGE, try_read_image
from harness.errors import UserError
from harness.reporting import plots
from harness.reporting.fonts import drawable_names
from harness.reporting.metrics import classification_metrics, misclassified_rows, softmax
from harness.training.config import EVALUATION_BATCH_SIZE
from harness.training.inputs import predict
from harness.training.run_dir import load_model, open_finished_run, write_json
from harness.training.test_time import with_test_time_augmentation

GALLERY_SIZE = 24
TITLE_LENGTH = 60  # characters of an image's name a plot's title has room for


def predict_probabilities(model, images, batch_size):
    """Class probabilities, and images per second after one warm-up batch."""
    images = images.astype("float32")
    predict(model, images[:batch_size], batch_size)  # compile outside the timing
    start = time.perf_counter()
    logits = predict(model, images, batch_size, verbose=1 if sys.stdout.isatty() else 0)  # a bar on terminals
    seconds = time.perf_counter() - start
    return softmax(np.asarray(logits, dtype=np.float64)), len(images) / seconds


CANNOT_WRITE = "copy the run folder somewhere you can write, and evaluate the copy"


def evaluate_run(run_dir, dataset=None, data_dir=None, batch_size=EVALUATION_BATCH_SIZE, test_time_augmentation=False):
    """Writes eval/metrics.json, confusion_matrix.png, misclassified.csv and misclassified.png, all at once:
    an evaluation that fails or is stopped leaves the earlier eval/ as it was (its images/ is kept).
    With `test_time_augmentation`, metrics.json also has "accuracy_tta" (the figures and tables stay plain)."""
    run, config = open_finished_run(run_dir)
    with folder_written_whole(run.path / "eval", carry=("images",), advice=CANNOT_WRITE) as out:
        metrics = _evaluate_into(out, run, config, dataset, data_dir, batch_size, test_time_augmentation)
    return metrics, run.path / "eval"


def _evaluate_into(out, run, config, dataset, data_dir, batch_size, test_time_augmentation):
    model = load_model(run)
    if data_dir is None and dataset is None:
        dataset, data_dir = config["dataset"], config.get("data_dir")
    test = data.load_dataset(dataset, data_dir, config["image_size"])
    if test.class_names != config["class_names"]:
        raise UserError(
            f"the data's classes {test.class_names[:5]}... differ from the run's {config['class_names'][:5]}...; "
            "evaluate on data with the classes the model was trained on"
        )
    probabilities, images_per_second = predict_probabilities(model, test.test.images, batch_size)
    labels = test.test.labels
    metrics, counts = classification_metrics(probabilities, labels, test.class_names)
    metrics.update(dataset=test.name, images_per_second=round(images_per_second, 1), backend=keras.backend.backend())
    if test_time_augmentation:
        augmented, _ = predict_probabilities(with_test_time_augmentation(model), test.test.images, batch_size)
        metrics["accuracy_tta"] = float(np.mean(np.argmax(augmented, axis=1) == labels))

    write_json(out / "metrics.json", metrics)
    shown_names = drawable_names(test.class_names)
    plots.plot_confusion_matrix(counts, shown_names, out / "confusion_matrix.png",
                                title=f"{config['model']} {config['preset']} on {test.name}")
    rows = misclassified_rows(probabilities, labels, test.class_names, sources=test.test.sources)
    with open(out / "misclassified.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, list(rows[0]) if rows else ["index", "true", "predicted", "confidence"])
        writer.writeheader()
        writer.writerows(rows)
    shown, name = rows[:GALLERY_SIZE], dict(zip(test.class_names, shown_names))
    plots.plot_image_gallery(
        [test.test.images[row["index"]] for row in shown],
        [f"{name[row['true']]} {plots.ARROW} {name[row['predicted']]} ({row['confidence']:.2f})" for row in shown],
        out / "misclassified.png",
        title=f"Most confident mistakes of {config['model']} {config['preset']} ({len(rows)} wrong of {len(labels)})",
    )
    return metrics


def shown_name(name, length=TITLE_LENGTH):
    """A user's file name as a plot's title can show it: bytes that are not UTF-8 as \\xNN escapes (as in every
    file this program writes), a long name cut in the middle."""
    name = printable(name)
    return name if len(name) <= length else f"{name[:length // 2]}…{name[len(name) - (length - length // 2 - 1):]}"


def classify_images(run_dir, paths, top_k=3):
    """Prints and plots the top-k classes of each image; returns [(path, [(class, p), ...])]. Each plot is named
    after its image, within the file system's limit on a name's length."""
    run, config = open_finished_run(run_dir)
    model = load_model(run)
    class_names, size = config["class_names"], config["image_size"]
    shown_names = drawable_names(class_names)
    images = []
    for path in map(pathlib.Path, paths):
        image, detail = try_read_image(path, size)  # detail: the original size, or why it was not read
        if image is None and detail == TOO_LARGE:
            raise UserError(f"{printable(str(path))} is {TOO_LARGE}; resize it first, e.g. to {size}x{size}")
        if image is None:
            raise UserError(f"{printable(str(path))} is not an image file this program can read")
        images.append(image)
    probabilities = softmax(np.asarray(predict(model, np.stack(images).astype("float32"), batch_size=32), np.float64))
    results = []
    with folder_written_whole(run.path / "eval" / "images", advice=CANNOT_WRITE) as out:  # this call's images only
        for number, (path, image, p) in enumerate(zip(map(pathlib.Path, paths), images, probabilities), start=1):
            best = np.argsort(-p)[: min(top_k, len(class_names))]
            ranked = [(class_names[k], float(p[k])) for k in best]
            results.append((path, ranked))
            name = name_within_limit(f"{number:02d}_{printable(path.stem)}", f"_top{top_k}.png")
            plots.plot_top_k(image, [shown_names[k] for k in best], [q for _, q in ranked], out / name,
                             title=shown_name(path.name))
    for path, ranked in results:  # a name that is not UTF-8 would stop print() on a UTF-8 terminal
        print(f"{printable(str(path))}: " + ", ".join(f"{name} {prob:.3f}" for name, prob in ranked))
    print(f"plots in {printable(str(run.path / 'eval' / 'images'))}")
    return results

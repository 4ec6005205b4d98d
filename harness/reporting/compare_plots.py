"""Figures that set several runs side by side: curves, summary bars, per-class accuracy."""

import matplotlib.pyplot as plt
import numpy as np

from harness.reporting.plots import mark_rows_without_images, row_names, row_normalised, rows_note, save_figure

COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


FEW_EPOCHS = 20  # up to this many epochs, each is drawn as a point too


def plot_training_curves(histories, labels, path):
    """Loss and accuracy, training (solid) and validation (dashed), against epoch and wall-clock time.

    histories: per run, a dict of column -> np.array from history.csv.
    """
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    for run, (history, label) in enumerate(zip(histories, labels)):
        colour = COLOURS[run % len(COLOURS)]
        seconds = np.cumsum(history["seconds"])
        marker = "o" if len(history["epoch"]) <= FEW_EPOCHS else None  # a 1-epoch run is a point, not nothing
        for row, metric in enumerate(("loss", "accuracy")):
            for column, x in enumerate((history["epoch"], seconds)):
                axis = axes[row, column]
                axis.plot(x, history[metric], color=colour, marker=marker, label=f"{label} train")
                if not np.all(np.isnan(history[f"val_{metric}"])):
                    axis.plot(x, history[f"val_{metric}"], color=colour, linestyle="--", marker=marker,
                              label=f"{label} validation")
    for row, metric in enumerate(("loss", "accuracy")):
        for column, x_label in enumerate(("epoch", "wall-clock seconds")):
            axis = axes[row, column]
            axis.set_xlabel(x_label)
            axis.set_ylabel(metric)
            axis.set_title(f"{metric} against {x_label}")
            axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=9)
    figure.suptitle("Training curves (solid: training split, dashed: validation split)")
    return save_figure(figure, path)


SUMMARY_BARS = (
    ("params", "parameters", 1e6, "millions"),
    ("flops_per_image", "FLOPs per image (forward)", 1e6, "millions"),
    ("images_per_second", "training throughput", 1, "images / second"),
    ("train_seconds", "training time", 1, "seconds"),
    ("best_val_accuracy", "best validation accuracy", 0.01, "%"),
    ("test_accuracy", "test accuracy", 0.01, "%"),
)


def bar_text(value):
    """A bar's label: three significant digits, and whole numbers with thousands separators from 100 up
    (1,217 img/s rather than matplotlib's 1.22e+03)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def plot_summary_bars(summaries, labels, path):
    """One bar chart per summary figure, one bar per run."""
    figure, axes = plt.subplots(2, 3, figsize=(13, 7))
    positions = np.arange(len(labels))
    for axis, (key, title, scale, unit) in zip(axes.flat, SUMMARY_BARS):
        values = [(s.get(key) or 0) / scale for s in summaries]
        bars = axis.bar(positions, values, color=[COLOURS[i % len(COLOURS)] for i in positions])
        axis.bar_label(bars, labels=[bar_text(value) for value in values], fontsize=9)
        axis.margins(y=0.1)  # room above the tallest bar for its label
        axis.set_xticks(positions, labels, rotation=15, ha="right")
        axis.set_ylabel(unit)
        axis.set_title(title)
    figure.suptitle("Runs compared")
    return save_figure(figure, path)


def plot_per_class_accuracy(accuracies, labels, class_names, path):
    """Grouped bars: each class's test accuracy, one bar per run."""
    width = 0.8 / len(labels)
    positions = np.arange(len(class_names))
    figure, axis = plt.subplots(figsize=(max(8, 0.6 * len(class_names) * len(labels) + 2), 4.5))
    for run, (values, label) in enumerate(zip(accuracies, labels)):
        values = np.asarray(values, dtype=float)  # NaN: the class has no test images
        x = positions + run * width - 0.4 + width / 2
        axis.bar(x, np.nan_to_num(100 * values), width, label=label, color=COLOURS[run % len(COLOURS)])
        for position in x[np.isnan(values)]:
            axis.text(position, 2, "n/a", rotation=90, ha="center", va="bottom", fontsize=8)
    rotate = len(class_names) > 10
    axis.set_xticks(positions, class_names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    axis.set_ylabel("test accuracy (%)")
    axis.set_ylim(0, 100)
    axis.set_title("Per-class test accuracy")
    axis.legend()
    axis.grid(axis="y", alpha=0.3)
    return save_figure(figure, path)


def plot_confusion_matrices(counts_per_run, labels, class_names, path):
    """Row-normalised confusion matrices side by side; the runs share the classes, so only the first
    panel names the rows."""
    size = max(4.5, 0.4 * len(class_names) + 1.5)
    figure, axes = plt.subplots(1, len(labels), figsize=(size * len(labels) + 1, size + 0.5), squeeze=False)
    ticks = np.arange(len(class_names))
    names = class_names if len(class_names) <= 30 else []
    for column, (axis, counts, label) in enumerate(zip(axes[0], counts_per_run, labels)):
        image = axis.imshow(row_normalised(counts), cmap="Blues", vmin=0, vmax=1)
        empty = mark_rows_without_images(axis, counts)
        axis.set_xticks(ticks if names else [], names, rotation=45, ha="right")
        axis.set_yticks(ticks if names else [], row_names(counts, names) if names and column == 0 else [])
        axis.set_xlabel("predicted class")
        axis.set_title(f"{label}: accuracy {100 * np.trace(counts) / counts.sum():.1f}%")
    axes[0, 0].set_ylabel("true class")
    figure.subplots_adjust(wspace=0.15, bottom=0.2)
    figure.colorbar(image, ax=list(axes[0]), fraction=0.03, label="share of the true class")
    figure.suptitle(f"Confusion matrices ({rows_note(empty)})")
    figure.savefig(path, dpi=110, bbox_inches="tight")  # grows the canvas to fit long class names
    plt.close(figure)
    return path

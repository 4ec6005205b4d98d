"""Figures for evaluation, sized to read well on a course slide. Each returns the saved path."""

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
# Every text these figures draw is a name or a number, never a formula: a class, file or folder named "a$x$"
# must show as itself (between two "$" Matplotlib would parse mathtext, and fail on, e.g., "$\q$")
matplotlib.rcParams["text.parse_math"] = False

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

ARROW = "\u2192"


def save_figure(figure, path):
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def row_normalised(counts):
    """Each row of a confusion matrix divided by its sum (rows without images stay 0)."""
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)


def mark_rows_without_images(axis, counts):
    """Hatches the rows of true classes that have no images (their row cannot sum to 1); returns how
    many there are."""
    empty = np.flatnonzero(counts.sum(axis=1) == 0)
    for row in empty:
        axis.add_patch(Rectangle((-0.5, row - 0.5), counts.shape[1], 1, fill=False, hatch="///", edgecolor="grey",
                                 linewidth=0))
    return len(empty)


def row_names(counts, class_names):
    """Class names for the rows, "(no images)" added where a class has none."""
    return [f"{name} (no images)" if total == 0 else name for name, total in zip(class_names, counts.sum(axis=1))]


def rows_note(empty):
    return "rows sum to 1" + (f"; {empty} class(es) without images hatched" if empty else "")


def plot_confusion_matrix(counts, class_names, path, title="Confusion matrix"):
    """Row-normalised: each row shows where one true class's images went."""
    normalised = row_normalised(counts)
    size = max(5.0, 0.45 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    show_names = len(class_names) <= 30
    axes.set_xticks(ticks, class_names if show_names else [], rotation=45, ha="right")
    axes.set_yticks(ticks, row_names(counts, class_names) if show_names else [])
    if len(class_names) <= 15:
        for (i, j), value in np.ndenumerate(normalised):
            if counts[i].sum():
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                          color="white" if value > 0.5 else "black")
    empty = mark_rows_without_images(axes, counts)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"{title}\n{int(counts.sum())} images, {rows_note(empty)}", fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    return save_figure(figure, path)


def plot_image_gallery(images, titles, path, title, columns=6):
    """A grid of images, each with its own title (e.g. "cat → dog (0.93)")."""
    count = max(1, len(images))
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows + 0.6), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, titles):
        axis.imshow(image.astype(np.uint8), interpolation="nearest")
        axis.set_title(caption, fontsize=9)
    if not len(images):
        axes.flat[0].text(0.5, 0.5, "no images", ha="center", va="center")
    figure.suptitle(title)
    return save_figure(figure, path)


def plot_top_k(image, class_names, probabilities, path, title):
    """An image beside a bar chart of its most likely classes."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2), gridspec_kw=dict(width_ratios=[1, 1.6]))
    left.imshow(image.astype(np.uint8), interpolation="nearest")
    left.axis("off")
    left.set_title(title, fontsize=9)
    positions = np.arange(len(class_names))[::-1]
    right.barh(positions, probabilities, color="tab:blue")
    right.set_yticks(positions, class_names)
    right.set_xlim(0, 1)
    right.set_xlabel("probability")
    right.set_title(f"top {len(class_names)} classes")
    return save_figure(figure, path)

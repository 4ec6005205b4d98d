"""Figures that look inside a trained model: the ViT analyses of the paper and evidence maps."""

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from harness.reporting.plots import save_figure


def plot_patches(image, patch_size, path):
    """An image, and the same image cut into its N patches in the order the ViT reads them (eq. 1)."""
    grid = image.shape[0] // patch_size
    figure = plt.figure(figsize=(11, 5))
    left = figure.add_subplot(1, 2, 1)
    left.imshow(image.astype(np.uint8), interpolation="nearest")
    for line in np.arange(0, image.shape[0] + 1, patch_size) - 0.5:
        left.axhline(line, color="white", linewidth=0.8)
        left.axvline(line, color="white", linewidth=0.8)
    left.set_title(f"{image.shape[0]}x{image.shape[1]} image, {patch_size}x{patch_size} patches")
    left.axis("off")
    tiles = figure.add_gridspec(grid, grid, left=0.55, right=0.97, bottom=0.08, top=0.88, wspace=0.15, hspace=0.45)
    for index in range(grid * grid):
        row, col = divmod(index, grid)
        axis = figure.add_subplot(tiles[row, col])
        axis.imshow(image[row * patch_size : (row + 1) * patch_size, col * patch_size : (col + 1) * patch_size]
                    .astype(np.uint8), interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        if grid <= 8:
            axis.set_title(str(index + 1), fontsize=7, pad=1)
    figure.text(0.76, 0.95, f"the N = {grid * grid} patches x_p, row-major", ha="center", fontsize=12)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_embedding_filters(components, path):
    """RGB tiles of the first principal components of the patch-embedding filters (Figure 7, left)."""
    columns = 7
    rows = int(np.ceil(len(components) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * rows + 0.7), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for index, (axis, component) in enumerate(zip(axes.flat, components)):
        axis.imshow(component, interpolation="nearest")
        axis.set_title(f"PC {index + 1}", fontsize=8)
    figure.suptitle("Principal components of the patch-embedding filters E")
    return save_figure(figure, path)


def plot_position_similarity(similarity, grid_size, path):
    """For each patch position, its embedding's cosine similarity to every other (Figure 7, centre)."""
    figure, axes = plt.subplots(grid_size, grid_size, figsize=(9, 9.4), squeeze=False)
    for index in range(grid_size * grid_size):
        row, col = divmod(index, grid_size)
        image = axes[row, col].imshow(similarity[index].reshape(grid_size, grid_size), cmap="viridis",
                                      vmin=-1, vmax=1)
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
        if col == 0:
            axes[row, col].set_ylabel(str(row + 1), rotation=0, labelpad=8)
        if row == grid_size - 1:
            axes[row, col].set_xlabel(str(col + 1))
    figure.supxlabel("input patch column")
    figure.supylabel("input patch row")
    figure.colorbar(image, ax=list(axes.flat), fraction=0.025, label="cosine similarity")
    figure.suptitle("Position embedding similarity")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_attention_distance(distances, image_size, path):
    """Mean attention distance of every head against depth (Figure 7, right)."""
    layers, heads = distances.shape
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for head in range(heads):
        axis.scatter(np.arange(1, layers + 1), distances[:, head], s=18, label=f"head {head + 1}")
    axis.set_xlabel("network depth (layer)")
    axis.set_ylabel("mean attention distance (pixels)")
    axis.set_xticks(np.arange(1, layers + 1))
    axis.set_ylim(0, image_size)
    axis.set_title(f"Mean attention distance per head ({image_size}x{image_size} input)")
    if heads <= 16:
        axis.legend(fontsize=7, ncol=2, loc="lower right")
    axis.grid(alpha=0.3)
    return save_figure(figure, path)


def upsample(heatmap, size):
    """A (h, w) map in [0, 1] resized to (size, size) with bilinear interpolation."""
    as_image = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F")
    return np.asarray(as_image.resize((size, size), Image.BILINEAR))


def plot_evidence_maps(images, image_captions, maps_per_run, labels, captions, path, title):
    """Rows of images: the input, then each run's map (attention rollout or Grad-CAM) overlaid.

    maps_per_run: per run, (B, h, w) maps in [0, 1]. captions: per run, per image text.
    """
    rows, columns = len(images), 1 + len(maps_per_run)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows + 0.6), squeeze=False)
    for row, image in enumerate(images):
        axes[row, 0].imshow(image.astype(np.uint8), interpolation="nearest")
        axes[row, 0].set_title(image_captions[row], fontsize=9)
        for column, (maps, label) in enumerate(zip(maps_per_run, labels), start=1):
            axes[row, column].imshow(image.astype(np.uint8), interpolation="nearest")
            axes[row, column].imshow(upsample(maps[row], image.shape[0]), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            axes[row, column].set_title(f"{label}\n{captions[column - 1][row]}", fontsize=8)
    for axis in axes.flat:
        axis.axis("off")
    figure.suptitle(title)
    return save_figure(figure, path)

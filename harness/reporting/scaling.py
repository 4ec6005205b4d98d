"""The data-scaling figure and table: test accuracy against the number of training images (section 4.2)."""

import json

import matplotlib.pyplot as plt
import numpy as np

from harness.reporting.plots import save_figure

COLOURS = {"vit": "tab:blue", "cnn": "tab:orange"}
NAMES = {"vit": "ViT", "cnn": "CNN"}


def summarise(rows):
    """Per model and size: mean and sample standard deviation of test accuracy over seeds."""
    groups = {}
    for row in rows:
        groups.setdefault((row["model"], row["preset"], row["train_images"]), []).append(row["test_accuracy"])
    summary = []
    for (model, preset, size), values in sorted(groups.items(), key=lambda item: (item[0][0] != "vit", item[0])):
        values = np.asarray(values, dtype=float)
        summary.append({"model": model, "preset": preset, "train_images": size, "runs": len(values),
                        "test_accuracy_mean": float(values.mean()),
                        "test_accuracy_std": float(values.std(ddof=1)) if len(values) > 1 else None})
    return summary


def plot_scaling(rows, path, dataset_name):
    """Test accuracy (%) against training images on a log axis; a line per model through the means,
    a band of one standard deviation where there are several seeds, and a dot per run."""
    figure, axis = plt.subplots(figsize=(8, 5))
    summary = summarise(rows)
    for model, preset in dict.fromkeys((s["model"], s["preset"]) for s in summary):
        points = [s for s in summary if (s["model"], s["preset"]) == (model, preset)]
        sizes = np.array([s["train_images"] for s in points])
        means = 100 * np.array([s["test_accuracy_mean"] for s in points])
        colour = COLOURS.get(model, "tab:green")
        axis.plot(sizes, means, marker="o", color=colour, label=f"{NAMES.get(model, model)} {preset}")
        spreads = np.array([s["test_accuracy_std"] or 0.0 for s in points]) * 100
        if spreads.any():
            axis.fill_between(sizes, means - spreads, means + spreads, color=colour, alpha=0.2)
        single = [r for r in rows if (r["model"], r["preset"]) == (model, preset)]
        axis.scatter([r["train_images"] for r in single], [100 * r["test_accuracy"] for r in single], color=colour,
                     s=12, alpha=0.5)
    axis.set_xscale("log")
    sizes = sorted({s["train_images"] for s in summary})
    axis.set_xticks(sizes, [f"{size:,}" for size in sizes], rotation=30)
    axis.minorticks_off()
    axis.set_xlabel("training images (log scale)")
    axis.set_ylabel("test accuracy (%)")
    seeds = max((s["runs"] for s in summary), default=1)
    band = f"; band: mean ± 1 std over {seeds} seeds" if seeds > 1 else ""
    axis.set_title(f"Accuracy against training-set size on {dataset_name}{band}")
    axis.grid(alpha=0.3)
    axis.legend()
    return save_figure(figure, path)


def markdown_table(rows):
    summary = summarise(rows)
    sizes = sorted({s["train_images"] for s in summary})
    models = list(dict.fromkeys((s["model"], s["preset"]) for s in summary))
    lines = ["| training images | " + " | ".join(f"{NAMES.get(m, m)} {p}" for m, p in models) + " |",
             "|---|" + "---|" * len(models)]
    for size in sizes:
        cells = []
        for model, preset in models:
            found = [s for s in summary if (s["model"], s["preset"], s["train_images"]) == (model, preset, size)]
            if not found:
                cells.append("-")
                continue
            s = found[0]
            spread = f" ± {100 * s['test_accuracy_std']:.2f}" if s["test_accuracy_std"] is not None else ""
            cells.append(f"{100 * s['test_accuracy_mean']:.2f}%{spread} "
                         f"({s['runs']} run{'s' if s['runs'] > 1 else ''})")
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


CAPTION = ("Test accuracy against the number of training images, on a log axis (paper section 4.2, "
           "Figures 3 and 4). The paper's finding: without a CNN's built-in locality and translation "
           "equivariance a ViT needs more data; it trails a ResNet on small training sets and catches up "
           "as the data grows. Every size trains for the same number of optimisation steps and keeps the "
           "weights of its best validation epoch; smaller training sets are subsets of larger ones.")


def write_scaling_report(rows, out, dataset_name):
    """scaling.png, scaling.md (table and figure) and scaling.json in `out`; returns the markdown path."""
    figure = plot_scaling(rows, out / "scaling.png", dataset_name)
    (out / "scaling.json").write_text(json.dumps({"runs": rows, "summary": summarise(rows)}, indent=2) + "\n")
    markdown = out / "scaling.md"
    markdown.write_text(f"# Data scaling on {dataset_name}\n\n{CAPTION}\n\n{markdown_table(rows)}\n\n"
                        f"![Data scaling]({figure.name})\n")
    return markdown

"""Accuracy by training budget: the paper's Figure 5 at course scale, for the CPU recipes (10, 30, 60 minutes).

`tools/results.py render` turns the measured runs in results/ into points (`budget_points`) and keeps them in
results/accuracy_by_budget.json beside the figure; a report (`compare.py`) of budget runs reads them back
(`read_reference`), draws its own runs over them and says which family leads at each budget (`leaders`).
"""

import json
import pathlib
import statistics

from harness.reporting.conclusion import FAMILY_NAMES

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "results" / "accuracy_by_budget.json"
FAMILY_COLOURS = {"cnn": "tab:blue", "hybrid": "tab:green", "vit": "tab:orange"}
BUDGET_TICKS = (10, 30, 60)  # minutes: the CPU recipes


def budget_points(runs):
    """[{model, preset, budget_minutes, minutes, accuracy, spread, seeds}] from measured runs, one point per
    CPU recipe and model: the mean test accuracy (%) over seeds and its standard deviation. `runs`: dicts with
    recipe, model, preset, test_accuracy (%), train_minutes, time_budget_minutes."""
    grouped = {}
    for run in runs:
        if run["recipe"].startswith("cpu"):
            grouped.setdefault((run["recipe"], run["model"]), []).append(run)
    points = []
    for (_, model), rows in grouped.items():
        accuracies = [row["test_accuracy"] for row in rows]
        points.append({"model": model, "preset": rows[0]["preset"],
                       "budget_minutes": rows[0]["time_budget_minutes"],
                       "minutes": round(statistics.mean(row["train_minutes"] for row in rows), 2),
                       "accuracy": round(statistics.mean(accuracies), 2),
                       "spread": round(statistics.stdev(accuracies), 2) if len(accuracies) > 1 else 0.0,
                       "seeds": len(accuracies)})
    return sorted(points, key=lambda point: (point["budget_minutes"], point["model"]))


def read_reference(path=REFERENCE):
    """The measured points in results/accuracy_by_budget.json ({"cpus": [...], "points": [...]}), or None where
    the file is missing or not as `tools/results.py render` writes it (a report then goes without them)."""
    try:
        data = json.loads(pathlib.Path(path).read_text())
        for point in data["points"]:
            float(point["minutes"]), float(point["accuracy"]), float(point["spread"]), float(point["budget_minutes"])
            FAMILY_NAMES[point["model"]]
        return data if isinstance(data["cpus"], list) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def leaders(points):
    """One Markdown line per budget: each family's accuracy, best first, and which leads."""
    lines = []
    for budget in sorted({point["budget_minutes"] for point in points}):
        ranked = sorted((p for p in points if p["budget_minutes"] == budget), key=lambda p: -p["accuracy"])
        scores = ", ".join(f"{FAMILY_NAMES[p['model']]} {p['accuracy']:.2f}%"
                           + (f" (± {p['spread']:.2f}, {p['seeds']} seeds)" if p["seeds"] > 1 else "")
                           for p in ranked)
        lead = FAMILY_NAMES[ranked[0]["model"]] if len(ranked) > 1 else None
        lines.append(f"- {budget:g} minutes: {scores}" + (f"; the {lead} leads." if lead else "."))
    return lines


def plot_accuracy_by_budget(points, path, cpus=(), own=()):
    """Test accuracy (%) against training minutes, a line per family through `points` (mean and spread over
    seeds); `own`: more points ({model, minutes, accuracy, label}) drawn as stars, a report's own runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for model in sorted({point["model"] for point in points}):
        line = sorted((p for p in points if p["model"] == model), key=lambda p: p["minutes"])
        axes.errorbar([p["minutes"] for p in line], [p["accuracy"] for p in line], yerr=[p["spread"] for p in line],
                      marker="o", capsize=3, color=FAMILY_COLOURS[model],
                      label=f"{FAMILY_NAMES[model]} ({', '.join(dict.fromkeys(p['preset'] for p in line))})")
    for point in own:
        axes.scatter(point["minutes"], point["accuracy"], marker="*", s=160, edgecolors="black", zorder=3,
                     color=FAMILY_COLOURS.get(point["model"], "grey"), label=point["label"])
    axes.set(xlabel="training minutes (2 CPU cores)", ylabel="test accuracy (%)",
             title="CIFAR-10 accuracy by training budget" + (f"\n{' / '.join(cpus)}" if cpus else ""))
    axes.set_xticks(BUDGET_TICKS)
    axes.set_xlim(0, max([65] + [point["minutes"] + 5 for point in own]))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return pathlib.Path(path)

"""The report's written conclusion: what the numbers say, generated from them, with the caveat that matters."""

import math
import statistics

FAMILY_NAMES = {"vit": "ViT", "cnn": "CNN", "hybrid": "hybrid"}
SMALL_TRAINING_SET = 10_000  # below this many training images a comparison is a smoke test, not a result


def sampling_error(accuracy, images):
    """One binomial standard error of a test accuracy measured on `images` images (a fraction)."""
    return math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / max(images, 1))


def training_data(config):
    """'45,000 training images of cifar10-jpeg (image folder /data/cifar10)' from a run's config.json."""
    sizes = config.get("split_sizes") or {}
    source = f"image folder or batch files at {config['data_dir']}" if config.get("data_dir") else (
        "the embedded sample in harness/data" if config.get("dataset") == "cifar10_sample" else "TensorFlow Datasets")
    train = f"{sizes['train']:,} training" if "train" in sizes else "training"
    validation = f", {sizes['validation']:,} validation" if sizes.get("validation") else ""
    return f"{train}{validation} images of {config.get('dataset')} ({source})"


def conclusion(runs):
    """Markdown lines. `runs`: dicts with label, model, preset, test_accuracy (fraction), test_images,
    train_images, time_budget (seconds or None), epochs."""
    groups = {}
    for run in runs:
        groups.setdefault((run["model"], run["preset"]), []).append(run)
    ranked = sorted(groups.values(), key=lambda rows: -statistics.mean(r["test_accuracy"] for r in rows))
    lines = ["## Conclusion", ""]
    best = ranked[0]
    best_mean = statistics.mean(r["test_accuracy"] for r in best)
    name = lambda rows: f"the {FAMILY_NAMES.get(rows[0]['model'], rows[0]['model'])} "\
        f"({rows[0]['preset']}{f', {len(rows)} seeds' if len(rows) > 1 else ''})"  # noqa: E731
    test_images = best[0]["test_images"]
    if len(ranked) == 1:
        lines.append(f"One model: {name(best)} reached {100 * best_mean:.2f}% test accuracy.")
    else:
        second = ranked[1]
        gap = best_mean - statistics.mean(r["test_accuracy"] for r in second)
        spreads = [statistics.stdev(r["test_accuracy"] for r in rows) for rows in (best, second) if len(rows) > 1]
        noise = sampling_error(best_mean, test_images)
        if spreads:
            spread = max(spreads)
            verdict = (f"{gap / spread:.1f} times the larger seed spread (± {100 * spread:.2f} points)" if spread
                       else "the seeds agree exactly")
        else:
            spread = 0.0
            verdict = (f"with one seed each, compare with the test set's own sampling error, ± {100 * noise:.2f} "
                       f"points (one standard error on {test_images:,} images)")
        clear = gap > 2 * max(spread, noise)
        lines.append(f"{name(best)[0].upper()}{name(best)[1:]} won: {100 * best_mean:.2f}% test accuracy against "
                     f"{100 * (best_mean - gap):.2f}% for {name(second)}, {100 * gap:.2f} points ahead; {verdict}. "
                     + ("A clear difference." if clear else "Too close to call from these runs."))
    train_images = (min(r["train_images"] for r in runs if r["train_images"])
                    if any(r["train_images"] for r in runs) else None)
    budgets = {r["time_budget"] for r in runs}
    if train_images is not None and train_images < SMALL_TRAINING_SET:
        lines.append("")
        lines.append(f"Caveat: the models trained on only {train_images:,} images, where a ViT, which lacks a CNN's "
                     "built-in locality, is at its weakest: read this as a smoke test of the set-up, not as how the "
                     "two families compare on full CIFAR-10 (README.md, Results).")
    elif len(budgets) == 1 and None not in budgets:
        lines.append("")
        lines.append(f"Caveat: each model trained for the same {next(iter(budgets)) / 60:g}-minute budget on this "
                     "machine, so the faster model saw more epochs; on other hardware the epochs, and perhaps the "
                     "winner, differ.")
    else:
        epochs = sorted({r["epochs"] for r in runs})
        lines.append("")
        lines.append(f"Caveat: trained for {', '.join(map(str, epochs))} epoch(s); ViTs trained from scratch need "
                     "longer schedules than CNNs (DeiT trains 300 epochs), so short ones favour the CNN.")
    return lines

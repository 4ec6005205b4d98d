"""visualize.py's work: compare any number of runs in figures and a report.md that embeds them."""

import dataclasses
import pathlib
import re

import keras
import numpy as np

import vit_tf
from harness import data
from harness.atomic import folder_written_whole
from harness.errors import UserError
from harness.models import MODEL_FAMILIES
from harness.reporting import analysis, budgets, compare_plots, handin, model_plots, plots, scaling
from harness.reporting.conclusion import conclusion, training_data
from harness.reporting.evaluate_run import predict_probabilities
from harness.reporting.fonts import drawable_names
from harness.reporting.metrics import confusion_matrix
from harness.reporting.runs import check_comparable, check_report_folder, check_sweep, sweep_dataset_name
from harness.training.config import EVALUATION_BATCH_SIZE
from harness.training.run_dir import load_model, open_finished_run
from vit_tf.presets import DEFAULT_OPTIONS, pixels_per_token

EVIDENCE_IMAGES = 6  # test images shown with attention rollout / Grad-CAM
ATTENTION_IMAGES = 128  # images averaged for mean attention distance, as the paper
GALLERY_COLUMNS = 8


@dataclasses.dataclass
class RunResult:
    label: str
    config: dict
    model: object
    test: data.Split
    probabilities: np.ndarray
    history: dict
    summary: dict
    manifest: dict  # manifest.json: command, commit, device, versions ({} for runs without one)

    @property
    def predictions(self):
        return self.probabilities.argmax(axis=1)

    @property
    def is_vit(self):
        """A ViT or a hybrid: a transformer, with tokens and attention maps."""
        return MODEL_FAMILIES[self.config["model"]].transformer

    @property
    def file_prefix(self):
        return self.label.replace(" ", "_").replace("#", "")


def read_history(run):
    """history.csv as arrays; "loss" is plain cross-entropy where the run recorded it (runs before it did
    recorded only the training objective, with label smoothing)."""
    rows = run.read_history() if run.history_path.exists() else []
    plain = bool(rows) and rows[0].get("cross_entropy") not in (None, "")
    columns = {"epoch": "epoch", "accuracy": "accuracy", "val_accuracy": "val_accuracy", "seconds": "seconds",
               "loss": "cross_entropy" if plain else "loss", "val_loss": "val_cross_entropy" if plain else "val_loss"}
    return {key: np.array([float(row[c]) if row.get(c) not in (None, "") else np.nan for row in rows])
            for key, c in columns.items()}


def load_run_result(run_dir, label, batch_size=EVALUATION_BATCH_SIZE):
    run, config = open_finished_run(run_dir)
    model = load_model(run)
    if config.get("data_dir") and not pathlib.Path(config["data_dir"]).exists():  # visualize.py has no --data-dir
        raise UserError(f"{run_dir} was trained on {config['data_dir']}, which no longer exists; the report reads "
                        "each run's own test split from there, so put the data back at that path")
    dataset = data.load_dataset(config["dataset"], config.get("data_dir"), config["image_size"])
    probabilities, _ = predict_probabilities(model, dataset.test.images, batch_size)
    metrics = run.read_metrics() if run.metrics_path.exists() else {}
    summary = {
        "params": model.count_params(),
        "flops_per_image": MODEL_FAMILIES[config["model"]].flops_per_image(model),
        "images_per_second": metrics.get("images_per_second"),
        "train_seconds": metrics.get("train_seconds"),
        "best_val_accuracy": metrics.get("best_val_accuracy"),
        "test_accuracy": float(np.mean(probabilities.argmax(axis=1) == dataset.test.labels)),
        "dataset": dataset.name,
        "epochs": config["epochs"],
    }
    manifest = run.read_manifest()
    return RunResult(label, config, model, dataset.test, probabilities, read_history(run), summary, manifest)


def most_confused_pairs(counts, class_names, top=5):
    off_diagonal = counts.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(-off_diagonal, axis=None)[:top]
    return [(class_names[i], class_names[j], int(off_diagonal[i, j]))
            for i, j in zip(*np.unravel_index(order, counts.shape))
            if off_diagonal[i, j] > 0]


def evidence_maps(result, indices):
    """Attention rollout for a ViT or hybrid, Grad-CAM for a CNN (either ResNet), on the given test images."""
    images = result.test.images[indices].astype("float32")
    if result.is_vit:
        _, attention = vit_tf.encoder_outputs(result.model, images)
        attention = [keras.ops.convert_to_numpy(a) for a in attention]
        rollout = analysis.attention_rollout(attention, vit_tf.prefix_tokens(result.model))
        grid = int(round(np.sqrt(rollout.shape[1])))
        maps = rollout.reshape(-1, grid, grid)
        return maps / maps.max(axis=(1, 2), keepdims=True), "attention rollout"
    return analysis.grad_cam(result.model, images), "Grad-CAM"


def _same_test_set(results):
    first = results[0].test
    return all(np.array_equal(r.test.labels, first.labels) and r.test.images.shape[0] == first.images.shape[0]
               for r in results)


def write_report(run_dirs, out_dir, batch_size=EVALUATION_BATCH_SIZE, sweep=None):
    """Writes the comparison figures, out_dir/report.md and the same as report.html (self-contained) and
    report.pdf; returns report.md's path. With `sweep` (a folder scaling.py wrote), the data-scaling
    figure and table join the report (alone, without runs).

    Everything is written into a hidden staging folder first, which replaces `out_dir` whole at the end:
    a failure never leaves a half-written report, and an earlier report's figures never stay beside new ones.
    """
    check_report_folder(out_dir)
    labels = check_comparable(run_dirs) if run_dirs else []
    rows = check_sweep(sweep) if sweep else None
    with folder_written_whole(out_dir) as staging:
        if run_dirs:
            _write_figures_and_report(run_dirs, labels, staging, batch_size)
        if rows:
            _add_scaling(rows, staging, sweep)
        handin.write_documents(staging / "report.md")
    return pathlib.Path(out_dir) / "report.md"


def _add_scaling(rows, out, sweep):
    figure = scaling.plot_scaling(rows, out / "scaling.png", sweep_dataset_name(sweep))
    report = out / "report.md"
    text = report.read_text() if report.exists() else "# ViT vs CNN\n"
    report.write_text(f"{text}\n## Data scaling\n\n{scaling.CAPTION}\n\n{scaling.markdown_table(rows)}\n\n"
                      f"![Data scaling]({figure.name})\n")


def _write_figures_and_report(run_dirs, labels, out, batch_size):
    results = [load_run_result(d, label, batch_size) for d, label in zip(run_dirs, labels)]
    real_names = results[0].config["class_names"]
    class_names = drawable_names(real_names)  # as the figures show them; report.md keeps the real ones
    figures = {}  # section title -> (file name, caption)

    figures["Training curves"] = (compare_plots.plot_training_curves(
        [r.history for r in results], labels, out / "training_curves.png").name,
        "Loss (plain cross-entropy, no label smoothing) and accuracy on the training split (solid, with augmentation "
        "and mixing) and the validation split (dashed).")
    figures["Summary"] = (compare_plots.plot_summary_bars([r.summary for r in results], labels,
                                                           out / "summary.png").name,
                          "FLOPs are analytic forward-pass counts (2 per multiply-add).")
    budget_lines = _budget_figure(results, figures, out)
    counts = [confusion_matrix(r.test.labels, r.predictions, len(class_names)) for r in results]
    figures["Confusion matrices"] = (compare_plots.plot_confusion_matrices(
        counts, labels, class_names, out / "confusion_matrices.png").name,
        "Rows are true classes and sum to 1; a hatched row is a class without test images.")
    per_class = [np.where(c.sum(axis=1) > 0, np.diag(c) / np.maximum(c.sum(axis=1), 1), np.nan) for c in counts]
    figures["Per-class accuracy"] = (compare_plots.plot_per_class_accuracy(
        per_class, labels, class_names, out / "per_class_accuracy.png").name,
        "Share of each class's test images classified correctly.")
    figures["Most confident mistakes"] = (_mistakes_gallery(results, class_names, out / "misclassified.png").name,
                                          "Each run's most confidently wrong test images: "
                                          "true → predicted (confidence).")

    shared_test = _same_test_set(results)
    if shared_test and len(results) >= 2:
        for a, b in ((results[0], results[1]), (results[1], results[0])):
            kinds = (a.config["model"], b.config["model"])
            name = f"right_{a.file_prefix}_wrong_{b.file_prefix}.png" if kinds[0] == kinds[1] else \
                f"right_{kinds[0]}_wrong_{kinds[1]}.png"
            figures[f"{a.label} right, {b.label} wrong"] = (
                _disagreement_gallery(a, b, class_names, out / name).name,
                f"Test images {a.label} classifies correctly and {b.label} does not, with {b.label}'s answer.")
    indices = np.linspace(0, len(results[0].test) - 1, EVIDENCE_IMAGES).astype(int)
    maps, map_labels, captions = [], [], []
    for result in results:
        result_maps, method = evidence_maps(result, indices)
        maps.append(result_maps)
        map_labels.append(f"{result.label} ({method})")
        captions.append([f"{class_names[p]} ({result.probabilities[i, p]:.2f})"
                         for i, p in zip(indices, result.predictions[indices])])
    figures["Where each model looks"] = (model_plots.plot_evidence_maps(
        results[0].test.images[indices], [f"true: {class_names[k]}" for k in results[0].test.labels[indices]],
        maps, map_labels, captions, out / "evidence_maps.png",
        "Evidence: attention rollout (ViT, hybrid) and Grad-CAM (CNN), with each model's prediction").name,
        "The same test images for every run. Rollout: heads averaged, 0.5 A + 0.5 I per block, blocks multiplied, "
        "class-token row; a hybrid's tokens are cells of its ResNet's feature map. Grad-CAM: for these ResNets it "
        "equals CAM, the head's weights on the last activation.")
    for result in results:
        if result.is_vit:
            figures.update(_vit_figures(result, out))

    report = out / "report.md"
    report.write_text(_markdown(results, figures, counts, real_names, shared_test, budget_lines))
    return report


def _budget_figure(results, figures, out):
    """For runs trained to a time budget: the figure of this project's measured accuracy by budget
    (results/accuracy_by_budget.json) with these runs over it, added to `figures`, and the conclusion's lines
    saying which family leads at each budget. [] for runs without a budget."""
    own = [{"model": r.config["model"], "minutes": (r.summary["train_seconds"] or r.config["time_budget"]) / 60,
            "accuracy": 100 * r.summary["test_accuracy"], "label": f"{r.label} (this report)"}
           for r in results if r.config.get("time_budget")]
    if not own:
        return []
    reference = budgets.read_reference() or {"cpus": [], "points": []}
    path = budgets.plot_accuracy_by_budget(reference["points"], out / "accuracy_by_budget.png", reference["cpus"],
                                           own)
    figures["Accuracy by training budget"] = (
        path.name, "Lines: this project's measured runs of the CPU recipes (results/, on the CPU named in the title; "
        "the paper's Figure 5 at course scale). Stars: this report's runs, at their training minutes.")
    if not reference["points"]:
        return []
    return ["", f"At each budget, in this project's measured runs ({' / '.join(reference['cpus'])}; results/):", "",
            *budgets.leaders(reference["points"])]


def _mistakes_gallery(results, class_names, path):
    images, titles = [], []
    for result in results:
        wrong = np.flatnonzero(result.predictions != result.test.labels)
        confidence = result.probabilities[wrong, result.predictions[wrong]]
        chosen = wrong[np.argsort(-confidence, kind="stable")][:GALLERY_COLUMNS]
        padding = GALLERY_COLUMNS - len(chosen)
        images += [result.test.images[i] for i in chosen] + [np.full_like(result.test.images[0], 255)] * padding
        titles += [f"{result.label}:\n{class_names[result.test.labels[i]]} {plots.ARROW} "
                   f"{class_names[result.predictions[i]]} ({result.probabilities[i, result.predictions[i]]:.2f})"
                   for i in chosen] + [""] * padding
    return plots.plot_image_gallery(images, titles, path, "Most confident mistakes, one row per run",
                                    columns=GALLERY_COLUMNS)


def _disagreement_gallery(right, wrong, class_names, path):
    found = np.flatnonzero((right.predictions == right.test.labels) & (wrong.predictions != wrong.test.labels))
    confidence = wrong.probabilities[found, wrong.predictions[found]]
    chosen = found[np.argsort(-confidence, kind="stable")][: 2 * GALLERY_COLUMNS]  # the wrong model's surest errors
    titles = [f"{class_names[right.test.labels[i]]}; {wrong.config['model']} said\n"
              f"{class_names[wrong.predictions[i]]} ({wrong.probabilities[i, wrong.predictions[i]]:.2f})"
              for i in chosen]
    return plots.plot_image_gallery([right.test.images[i] for i in chosen], titles, path,
                                    f"{right.label} right, {wrong.label} wrong: {len(found)} images, "
                                    f"the {len(chosen)} where {wrong.label} was surest shown",
                                    columns=GALLERY_COLUMNS)


def _vit_figures(result, out):
    """Figure 7's three analyses; a hybrid's tokens are cells of a feature map, not pixel patches, so it
    has no patch picture and no RGB filters of E, and its attention distance counts one cell as the
    pixels it strides over."""
    model, config = result.model, result.config["model_config"]
    prefix = result.file_prefix
    hybrid = config.get("resnet_width") is not None or bool(config.get("conv_stem_widths"))
    side, size = pixels_per_token({**DEFAULT_OPTIONS, **config}), config["image_size"]
    grid = size // side
    _, attention = vit_tf.encoder_outputs(model, result.test.images[:ATTENTION_IMAGES].astype("float32"))
    distances = analysis.mean_attention_distance([keras.ops.convert_to_numpy(a) for a in attention], grid, side,
                                                 vit_tf.prefix_tokens(model))
    figures = {} if hybrid else {
        f"{result.label}: the input as patches": (model_plots.plot_patches(
            result.test.images[0], side, out / f"{prefix}_patches.png").name,
            "Eq. 1 cuts each image into N = HW/P² patches, read in row-major order."),
        f"{result.label}: patch-embedding filters": (model_plots.plot_embedding_filters(
            analysis.embedding_filter_components(model), out / f"{prefix}_embedding_filters.png").name,
            "Principal components of the D learned filters of E, each scaled to [0, 1] (paper Figure 7, left)."),
    }
    return {
        **figures,
        f"{result.label}: position embedding similarity": (model_plots.plot_position_similarity(
            analysis.position_similarity(model), grid, out / f"{prefix}_position_similarity.png").name,
            "Tile (r, c): cosine similarity of patch (r, c)'s position embedding to every patch's (Figure 7, centre)."),
        f"{result.label}: mean attention distance": (model_plots.plot_attention_distance(
            distances, size, out / f"{prefix}_attention_distance.png").name,
            "Per head, attention-weighted pixel distance between patches, "
            f"over {min(ATTENTION_IMAGES, len(result.test))} "
            "test images; the class token is left out (Figure 7, right)."),
    }


def _markdown(results, figures, counts, class_names, shared_test, budget_lines=()):
    lines = ["# ViT vs CNN: run comparison", "",
             f"Dataset: {results[0].summary['dataset']}, {len(results[0].test):,} test images, "
             f"{len(class_names)} classes; trained on {training_data(results[0].config)}.", "",
             *conclusion([{"label": r.label, "model": r.config["model"], "preset": r.config["preset"],
                           "test_accuracy": r.summary["test_accuracy"], "test_images": len(r.test),
                           "train_images": (r.config.get("split_sizes") or {}).get("train"),
                           "time_budget": r.config.get("time_budget"), "epochs": r.summary["epochs"]}
                          for r in results]), *budget_lines, "",
             "## Runs", "",
             "| run | params | FLOPs / image | train img/s | train time (s) | epochs | best val acc | test acc |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r.summary
        number = lambda v, fmt: "n/a" if v is None else format(v, fmt)  # noqa: E731
        best_val = "n/a" if s["best_val_accuracy"] is None else f"{100 * s['best_val_accuracy']:.2f}%"
        lines.append(f"| {r.label} | {s['params']:,} | {s['flops_per_image'] / 1e6:,.1f} M | "
                     f"{number(s['images_per_second'], ',.1f')} | {number(s['train_seconds'], ',.1f')} | "
                     f"{s['epochs']} | {best_val} | {100 * s['test_accuracy']:.2f}% |")
    lines += ["", "Test accuracy is recomputed here from each saved model; it equals the run's metrics.json.", ""]
    lines += ["## Most confused class pairs", "", "| run | true → predicted (images) |", "|---|---|"]
    for r, c in zip(results, counts):
        pairs = ", ".join(f"{t} → {p} ({n})" for t, p, n in most_confused_pairs(c, class_names))
        lines.append(f"| {r.label} | {pairs or 'none'} |")
    if not shared_test:
        lines += ["", "The runs used different test sets, so there is no disagreement gallery."]
    lines += _settings_tables(results)
    for title, (file_name, caption) in figures.items():
        lines += ["", f"## {title}", "", caption, "", f"![{title}]({file_name})"]
    return "\n".join(lines) + "\n"


# config.json key -> the row's name in the settings table
SETTINGS = {"model": "model", "preset": "preset", "recipe": "recipe", "image_size": "image size",
            "time_budget": "time budget", "epochs": "epochs",
            "batch_size": "batch size", "optimizer": "optimizer", "learning_rate": "learning rate",
            "weight_decay": "weight decay", "warmup_epochs": "warm-up epochs", "label_smoothing": "label smoothing",
            "augmentation": "augmentation", "mixing": "mixing", "drop_path_rate": "drop path",
            "resolved_precision": "precision", "seed": "seed"}


def applied_setting(config, key):
    """A config.json setting as the run applied it, or None where it did not apply: no drop path for a CNN,
    no MixUp strength without mixing, the warm-up as the schedule really ran it (never longer than the run)."""
    value = config.get(key)
    if key == "drop_path_rate" and not MODEL_FAMILIES[config["model"]].transformer:
        return None
    if key == "time_budget" and value:
        return f"{value / 60:g} min"
    if key == "warmup_epochs" and value is not None and config.get("epochs"):
        return round(min(value, config["epochs"]), 3) or None  # the schedule caps it at the run's length
    return value


def plain_cell(value):
    """`value` as literal text in a Markdown table cell: a command such as `python -m __main__` or a path
    with `*` stays as written (no bold, no tags, which the PDF's table cells cannot hold either)."""
    if value is None:
        return "—"
    text = re.sub(r"([\\`*_\[\]])", r"\\\1", str(value))
    return text.replace("<", "&lt;").replace("|", "/")


def _settings_tables(results):
    """The runs' settings (config.json) and provenance (manifest.json), one column per run."""
    header = ["", f"| | {' | '.join(plain_cell(r.label) for r in results)} |", "|---" * (len(results) + 1) + "|"]
    lines = ["", "## Run settings", "", "From each run's config.json.", *header]
    for key, name in SETTINGS.items():
        values = [applied_setting(r.config, key) for r in results]
        if any(value is not None for value in values):
            lines.append(f"| {name} | {' | '.join(plain_cell(value) for value in values)} |")
    pretrained = [(r.config.get("pretrained_checkpoint") or {}).get("file") for r in results]
    if any(pretrained):
        lines.append(f"| pretrained | {' | '.join(plain_cell(p) for p in pretrained)} |")
    lines += ["", "## Provenance", "", "From each run's manifest.json: what produced it.", *header]
    provenance = {
        "command": lambda m: " ".join(m.get("command", [])) or None,
        "git commit": lambda m: (m.get("git_commit") or "")[:12] or None,
        "backend": lambda m: m.get("backend"),
        "device": lambda m: m.get("device"),
        "versions": lambda m: ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()) or None,
        "data sha256": lambda m: (m.get("dataset") or {}).get("sha256", "")[:16] or None,
    }
    for name, read in provenance.items():
        lines.append(f"| {name} | {' | '.join(plain_cell(read(r.manifest)) for r in results)} |")
    return lines

"""visualize.py: the paper's analyses against hand computations, every figure, and report.md."""

import base64
import html.parser
import json

import keras
import numpy as np
import pytest
from entry_points import run
from PIL import Image

import cnn_baseline
import vit_tf
from harness.reporting import analysis, budgets, compare_plots, model_plots, scaling


def test_attention_rollout_of_one_block_is_half_attention_plus_half_identity():
    model = vit_tf.build_vit("vit_test", num_layers=1)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    _, (attention,) = vit_tf.encoder_outputs(model, images)
    attention = keras.ops.convert_to_numpy(attention)  # (B, k, 65, 65), rows sum to 1
    by_hand = 0.5 * attention.mean(axis=1) + 0.5 * np.eye(65)  # rows still sum to 1
    np.testing.assert_allclose(analysis.attention_rollout([attention]), by_hand[:, 0, 1:], rtol=1e-6)


def test_a_distilled_vit_reads_the_class_token_and_leaves_both_prefix_tokens_off_the_grid():
    model = vit_tf.build_vit("vit_test", num_layers=1, distillation=True)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    _, (attention,) = vit_tf.encoder_outputs(model, images)
    attention = keras.ops.convert_to_numpy(attention)  # (B, k, 66, 66): class, distillation, 64 patches
    by_hand = 0.5 * attention.mean(axis=1) + 0.5 * np.eye(66)
    assert vit_tf.prefix_tokens(model) == 2
    np.testing.assert_allclose(analysis.attention_rollout([attention], prefix_tokens=2), by_hand[:, 0, 2:], rtol=1e-6)
    assert analysis.position_similarity(model).shape == (64, 64)
    assert analysis.mean_attention_distance([attention], 8, 4, prefix_tokens=2).shape == (1, 2)


def test_attention_rollout_multiplies_later_blocks_on_the_left():
    rng = np.random.default_rng(1)
    blocks = [rng.dirichlet(np.ones(3), size=(1, 2, 3)) for _ in range(2)]
    mixed = [0.5 * b.mean(axis=1)[0] + 0.5 * np.eye(3) for b in blocks]
    np.testing.assert_allclose(analysis.attention_rollout(blocks)[0], (mixed[1] @ mixed[0])[0, 1:], rtol=1e-10)


def test_mean_attention_distance_of_local_and_uniform_heads():
    grid, patch = 4, 8
    tokens = grid * grid + 1
    local = np.eye(tokens)[None, None]  # each patch attends to itself: distance 0
    uniform = np.full((1, 1, tokens, tokens), 1 / tokens)
    distances = analysis.mean_attention_distance([np.concatenate([local, uniform], axis=1)], grid, patch)
    rows, cols = np.divmod(np.arange(16), 4)
    all_pairs = np.hypot(rows[:, None] - rows[None], cols[:, None] - cols[None]) * patch
    np.testing.assert_allclose(distances, [[0.0, all_pairs.mean()]], rtol=1e-10)


def test_position_similarity_and_filter_components():
    model = vit_tf.build_vit("vit_test")
    similarity = analysis.position_similarity(model)
    assert similarity.shape == (64, 64)  # the class token's row is left out
    np.testing.assert_allclose(np.diag(similarity), 1.0, rtol=1e-5)
    components = analysis.embedding_filter_components(model)
    assert components.shape == (16, 4, 4, 3)  # at most D = 16 components
    assert components.min() >= 0 and components.max() <= 1


@pytest.mark.parametrize("preset", ["resnet_test", "bit_test"])
def test_grad_cam_equals_the_gradient_definition(preset):
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses tf.GradientTape")
    model = cnn_baseline.build_cnn(preset)
    head = model.get_layer("head")  # BiT's head starts at zero, where every map is 0
    head.kernel.assign(np.random.default_rng(3).normal(size=head.kernel.shape))
    images = np.random.default_rng(2).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    features_model = keras.Model(model.input, [model.get_layer("head_relu").output, model.output])

    @tf.function  # eagerly, TF 2.21's oneDNN kernels crash on this gradient (double free) on some CPUs
    def features_and_gradients(images):
        with tf.GradientTape() as tape:
            features, logits = features_model(images)
            chosen = tf.reduce_sum(logits * tf.one_hot(tf.argmax(logits, axis=1), logits.shape[1]))
        return features, tape.gradient(chosen, features)

    features, gradients = features_and_gradients(images)
    weights = tf.reduce_mean(gradients, axis=(1, 2))  # alpha_k: the mean gradient of each channel
    maps = tf.nn.relu(tf.einsum("bhwk,bk->bhw", features, weights)).numpy()
    maps /= maps.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(analysis.grad_cam(model, images), maps, rtol=1e-4, atol=1e-6)


def _history(seed):
    rng = np.random.default_rng(seed)
    epochs = np.arange(1, 6)
    return {"epoch": epochs, "seconds": rng.uniform(1, 2, 5), "loss": rng.uniform(1, 2, 5),
            "accuracy": rng.uniform(0, 1, 5), "val_loss": rng.uniform(1, 2, 5), "val_accuracy": rng.uniform(0, 1, 5)}


def _summary(seed):
    rng = np.random.default_rng(seed)
    return {key: float(rng.uniform(1, 100)) for key, *_ in compare_plots.SUMMARY_BARS}


def _sweep_rows(seed):
    rng = np.random.default_rng(seed)
    return [{"model": model, "preset": preset, "train_images": size, "seed": run,
             "test_accuracy": float(rng.uniform(0.2, 0.9))}
            for model, preset in (("vit", "vit_test"), ("cnn", "resnet_test")) for size in (100, 1000, 10000)
            for run in range(2)]


PLOTS = {
    "scaling": lambda seed, path: scaling.plot_scaling(_sweep_rows(seed), path, "data"),
    "training_curves": lambda seed, path: compare_plots.plot_training_curves([_history(seed)], ["run"], path),
    "summary": lambda seed, path: compare_plots.plot_summary_bars(
        [_summary(seed), _summary(seed + 1)], ["a", "b"], path),
    "per_class": lambda seed, path: compare_plots.plot_per_class_accuracy(
        [np.random.default_rng(seed).uniform(0, 1, 3)], ["run"], ["x", "y", "z"], path),
    "confusion_matrices": lambda seed, path: compare_plots.plot_confusion_matrices(
        [np.random.default_rng(seed).integers(0, 9, (3, 3))] * 2, ["a", "b"], ["x", "y", "z"], path),
    "patches": lambda seed, path: model_plots.plot_patches(
        np.random.default_rng(seed).integers(0, 256, (16, 16, 3)), 4, path),
    "filters": lambda seed, path: model_plots.plot_embedding_filters(
        np.random.default_rng(seed).uniform(0, 1, (5, 4, 4, 3)), path),
    "position_similarity": lambda seed, path: model_plots.plot_position_similarity(
        np.random.default_rng(seed).uniform(-1, 1, (16, 16)), 4, path),
    "attention_distance": lambda seed, path: model_plots.plot_attention_distance(
        np.random.default_rng(seed).uniform(0, 32, (3, 2)), 32, path),
    "accuracy_by_budget": lambda seed, path: budgets.plot_accuracy_by_budget(
        [{"model": model, "preset": "p", "minutes": minutes, "spread": 0.0,
          "accuracy": float(np.random.default_rng(seed).uniform(50, 90))}
         for model in ("cnn", "vit") for minutes in (10, 30)],
        path, ["a CPU"],
        [{"model": "cnn", "minutes": 29.0, "accuracy": 80.0 + seed, "label": "run"}]),
    "evidence": lambda seed, path: model_plots.plot_evidence_maps(
        np.random.default_rng(seed).integers(0, 256, (2, 16, 16, 3)), ["a", "b"],
        [np.random.default_rng(seed).uniform(0, 1, (2, 4, 4))], ["run"], [["p", "q"]], path, "evidence"),
}


@pytest.mark.parametrize("name", list(PLOTS))
def test_each_figure_is_a_png_that_depends_on_its_input(tmp_path, name):
    first, second = PLOTS[name](0, tmp_path / "first.png"), PLOTS[name](1, tmp_path / "second.png")
    assert first.stat().st_size > 5_000
    assert not np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))


@pytest.mark.trains
def test_one_command_trains_evaluates_and_reports(image_folder, tmp_path):
    """compare.py end to end with the paper's three families (the CNN is BiT's) and the ViT distilled from
    the BiT as a fourth run; report.md must carry each run's own metrics.json numbers."""
    out = tmp_path / "comparison"
    result = run("compare.py", "--data-dir", image_folder, "--vit-preset", "vit_test", "--cnn-preset", "bit_test",
                 "--hybrid", "--hybrid-preset", "hybrid_test", "--epochs", 2, "--batch-size", 4, "--distill",
                 "--out", out)
    assert result.returncode == 0, result.stderr
    text = (out / "report" / "report.md").read_text()
    for model, label in (("vit", "vit vit_test"), ("cnn", "cnn bit_test"), ("hybrid", "hybrid hybrid_test"),
                         ("vit_distilled", "vit vit_test distilled")):
        metrics = json.loads((out / model / "metrics.json").read_text())
        assert (out / model / "eval" / "confusion_matrix.png").exists()
        row = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
        assert f"{metrics['params']:,}" in row
        assert f"{100 * metrics['test_accuracy']:.2f}%" in row
        assert f"{metrics['images_per_second']:,.1f}" in row and f"{metrics['train_seconds']:,.1f}" in row
    figures = [line.split("(")[-1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert len(figures) >= 17
    # The hybrid's tokens are feature-map cells: its attention analyses, but no pixel patches or RGB filters.
    assert {"hybrid_hybrid_test_attention_distance.png", "hybrid_hybrid_test_position_similarity.png"} <= set(figures)
    assert not any(name.startswith("hybrid_hybrid_test_patches") for name in figures)
    for name in figures:
        assert (out / "report" / name).stat().st_size > 5_000
    assert "## Run settings" in text and "## Provenance" in text
    backends = next(line for line in text.splitlines() if line.startswith("| backend |"))
    assert backends.count(keras.backend.backend()) == 4  # the runs' provenance
    check_handin_documents(out / "report", figures)


@pytest.mark.trains
def test_a_report_replaces_an_earlier_one_whole_and_never_a_folder_of_other_files(image_folder, tmp_path):
    from harness.errors import UserError
    from harness.reporting.report import write_report
    from harness.training.config import TrainConfig
    from harness.training.trainer import train

    train(TrainConfig(model="cnn", preset="resnet_test", data_dir=str(image_folder), epochs=1, batch_size=4,
                      run_dir=str(tmp_path / "run")), verbose=0)
    report = write_report([tmp_path / "run"], tmp_path / "report")
    figures = sorted(path.name for path in report.parent.iterdir())
    (report.parent / "cnn_resnet_test_from_an_earlier_report.png").write_bytes(b"stale")
    write_report([tmp_path / "run"], tmp_path / "report")
    assert sorted(path.name for path in report.parent.iterdir()) == figures  # the stale figure is gone
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging left
    with pytest.raises(UserError, match=r"--out .* holds other files \(images, report, run\), not an earlier report"):
        write_report([tmp_path / "run"], tmp_path)  # would have replaced the runs and data beside it


class PageParts(html.parser.HTMLParser):
    """The images, tables, headings and outside references of an HTML page."""

    def __init__(self):
        super().__init__()
        self.images, self.tables, self.headings, self.references = [], 0, [], []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        self.tables += tag == "table"
        self._in_heading = tag in ("h1", "h2")
        self.references += [attrs[key] for key in ("href", "src") if key in attrs and tag != "img"]

    def handle_data(self, data):
        if self._in_heading:
            self.headings.append(data)
            self._in_heading = False


def check_handin_documents(folder, figures):
    """report.html: every figure of report.md embedded byte for byte, the tables, nothing fetched from
    elsewhere; report.pdf: a PDF with every figure in it."""
    page = PageParts()
    page.feed((folder / "report.html").read_text())
    assert len(page.images) == len(figures) and not page.references
    for src, name in zip(page.images, figures):
        prefix, _, encoded = src.partition(",")
        assert prefix == "data:image/png;base64" and base64.b64decode(encoded) == (folder / name).read_bytes()
    separators = [line for line in (folder / "report.md").read_text().splitlines() if line.startswith("|---")]
    assert page.tables == len(separators) >= 4  # runs, confused pairs, settings, provenance
    assert {"Run settings", "Provenance", "Training curves"} <= set(page.headings)
    pdf = (folder / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert pdf.count(b"/Subtype /Image") >= len(set(figures)) and pdf.count(b"/Type /Page\n") >= 5


@pytest.mark.parametrize("text", ["python -m __main__ -k a_b", "train.py --run-dir runs/*", "a\\b <c> `d` [e](f)"])
def test_a_settings_cell_shows_its_text_as_written(text):
    """A command in the provenance table (pytest's is `python -m __main__ ...`) is text, not Markdown: no
    bold, no tags, which the PDF's table cells cannot hold."""
    import html

    import markdown

    from harness.reporting.report import plain_cell

    table = markdown.markdown(f"| command |\n|---|\n| {plain_cell(text)} |", extensions=["tables"])
    cell = table.split("<td>")[1].split("</td>")[0]
    assert "<" not in cell and html.unescape(cell) == text


@pytest.mark.parametrize("value, text", [(1217.4, "1,217"), (3600.0, "3,600"), (100.0, "100"), (63.24, "63.2"),
                                         (0.4137, "0.414"), (50.6, "50.6"), (0.0, "0")])
def test_a_summary_bar_is_labelled_as_people_write_numbers(value, text):
    assert compare_plots.bar_text(value) == text

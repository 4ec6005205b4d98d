"""evaluate.py: metrics and tables checked against predictions recomputed independently."""

import csv
import json
import os

import keras
import numpy as np
import pytest
from entry_points import run
from helpers import run_train, write_image_folder, write_png_header
from PIL import Image

from harness.atomic import folder_written_whole, name_within_limit
from harness.data import load_dataset
from harness.errors import UserError
from harness.reporting import plots
from harness.reporting.evaluate_run import classify_images, evaluate_run, shown_name
from harness.reporting.metrics import classification_metrics, confusion_matrix, misclassified_rows


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    folder = write_image_folder(root / "images", classes=("a", "b", "c", "d", "e", "f", "g"), per_class=(6, 4))
    result = run_train("--model", "cnn", "--preset", "resnet_test", "--data-dir", folder, "--epochs", 2,
                       "--batch-size", 8, "--run-dir", root / "run")
    assert result.returncode == 0, result.stderr
    return root / "run", folder


@pytest.mark.trains
def test_metrics_and_misclassified_csv_match_independent_predictions(trained_run):
    run_dir, folder = trained_run
    metrics, out = evaluate_run(run_dir)
    test = load_dataset(data_dir=folder).test
    model = keras.saving.load_model(run_dir / "model.keras")
    predicted = np.argmax(keras.ops.convert_to_numpy(model(test.images.astype("float32"))), axis=1)

    assert metrics["images"] == len(test) == 28
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == test.labels))
    assert "top5_accuracy" in metrics  # 7 classes
    with open(out / "misclassified.csv") as file:
        rows = list(csv.DictReader(file))
    wrong = np.flatnonzero(predicted != test.labels)
    assert sorted(int(r["index"]) for r in rows) == sorted(wrong.tolist())
    names = ["a", "b", "c", "d", "e", "f", "g"]
    for row in rows:
        assert row["true"] == names[test.labels[int(row["index"])]]
        assert row["predicted"] == names[predicted[int(row["index"])]] == row["top1"]
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]
    for figure in ("confusion_matrix.png", "misclassified.png"):
        assert (out / figure).stat().st_size > 10_000


def test_classification_metrics_on_a_hand_example():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 0, 2]] * 0.7 + 0.1
    metrics, counts = classification_metrics(probabilities, labels, ["x", "y", "z"])
    assert counts.sum() == 6
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class"]["y"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "accuracy": 1.0, "images": 2}
    assert metrics["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.1, 0.8, 0.8, 0.1, 0.8])))
    assert "top5_accuracy" not in metrics
    rows = misclassified_rows(probabilities, labels, ["x", "y", "z"])
    assert [(r["index"], r["true"], r["predicted"]) for r in rows] == [(1, "x", "y"), (4, "z", "x")]


def test_confusion_matrix_counts_every_image():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    counts = confusion_matrix(labels, predictions, 10)
    assert counts.sum() == 500 and np.trace(counts) == np.sum(labels == predictions)


def png_pixels(path):
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("plot", ["confusion", "gallery", "top_k"])
def test_each_plot_writes_a_png_that_depends_on_its_input(tmp_path, plot):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (4, 32, 32, 3)), rng.integers(0, 256, (4, 32, 32, 3))]
    draw = {
        "confusion": lambda i, path: plots.plot_confusion_matrix(
            confusion_matrix(rng.integers(0, 3, 50), rng.integers(0, 3, 50), 3), ["a", "b", "c"], path),
        "gallery": lambda i, path: plots.plot_image_gallery(images[i], ["a → b (0.9)"] * 4, path, "mistakes"),
        "top_k": lambda i, path: plots.plot_top_k(images[i][0], ["a", "b"], [0.7 - 0.5 * i, 0.2], path, "x.jpg"),
    }[plot]
    first, second = draw(0, tmp_path / "first.png"), draw(1, tmp_path / "second.png")
    assert first.stat().st_size > 5_000
    assert not np.array_equal(png_pixels(first), png_pixels(second))


@pytest.mark.trains
def test_classify_own_images_of_any_size(trained_run, tmp_path, capsys):
    run_dir, folder = trained_run
    big = tmp_path / "big.jpg"
    Image.new("RGB", (300, 200), (200, 10, 10)).save(big)
    results = classify_images(run_dir, [big, folder / "test" / "a" / "0.png"], top_k=3)
    assert len(results) == 2 and len(results[0][1]) == 3
    probabilities = [p for _, p in results[0][1]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6
    assert "big.jpg:" in capsys.readouterr().out
    assert (run_dir / "eval" / "images" / "01_big_top3.png").exists()


@pytest.mark.trains
def test_image_names_that_are_not_utf8_long_or_like_mathtext_are_shown_and_name_plots_within_the_limit(
        trained_run, tmp_path, capsys):
    """As the shell passes them: Latin-1 bytes (a file from an old archive), a 250-byte name, and a name
    Matplotlib would read as a formula."""
    run_dir, folder = trained_run
    pixels = (folder / "test" / "a" / "0.png").read_bytes()
    paths = []
    for name in (b"caf\xe9.png", b"p" * 246 + b".png", b"a$\\q$b.png"):
        with open(os.fsencode(tmp_path) + b"/" + name, "wb") as file:
            file.write(pixels)
        paths.append(os.fsdecode(os.fsencode(tmp_path) + b"/" + name))  # how sys.argv holds it
    classify_images(run_dir, paths)
    printed = capsys.readouterr().out  # pytest's capture, like a UTF-8 terminal, refuses what is not UTF-8
    assert "caf\\xe9.png: " in printed and "a$\\q$b.png: " in printed
    written = sorted(os.listdir(os.fsencode(run_dir / "eval" / "images")))
    assert written[0] == b"01_caf\\xe9_top3.png" and written[2] == b"03_a$\\q$b_top3.png"
    assert written[1].startswith(b"02_ppp") and written[1].endswith(b"_top3.png") and len(written[1]) <= 255


def test_long_names_are_cut_within_the_file_system_limit_and_stay_apart():
    assert name_within_limit("01_cat", "_top3.png") == "01_cat_top3.png"
    first, second = (name_within_limit("01_" + "é" * 200 + tail, "_top3.png") for tail in "ab")
    assert first != second
    for name in (first, second):
        assert len(name.encode()) <= 255 and name.startswith("01_éé") and name.endswith("_top3.png")
    assert shown_name(os.fsdecode(b"caf\xe9.jpg")) == "caf\\xe9.jpg"
    assert len(shown_name("x" * 245)) == 60 and "…" in shown_name("x" * 245)


def test_a_folder_named_near_the_limit_is_written_whole(tmp_path):
    """The staging folder beside it (visualize.py --out, eval/) fits the limit too."""
    target = tmp_path / ("r" * 250)
    for text in ("first", "second"):  # new, then replacing the earlier one
        with folder_written_whole(target) as staging:
            (staging / "report.md").write_text(text)
    assert (target / "report.md").read_text() == "second" and os.listdir(tmp_path) == ["r" * 250]


@pytest.mark.trains
def test_an_image_too_large_to_decode_safely_is_refused_in_one_line(trained_run, tmp_path):
    run_dir, _ = trained_run
    huge = write_png_header(tmp_path / "huge.png", 20_000, 20_000)
    with pytest.raises(UserError, match=r"huge.png is too large to decode safely \(over 179 million pixels\); "
                                        "resize it first"):
        classify_images(run_dir, [huge])


@pytest.mark.trains
def test_an_evaluation_stopped_midway_leaves_the_earlier_one_whole(trained_run, tmp_path, monkeypatch):
    run_dir, folder = trained_run
    evaluate_run(run_dir)
    classify_images(run_dir, [folder / "test" / "a" / "0.png"])
    earlier = {path.relative_to(run_dir): path.read_bytes() for path in (run_dir / "eval").rglob("*") if path.is_file()}

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C or SIGTERM (raised the same way) while the figures are drawn

    monkeypatch.setattr(plots, "plot_image_gallery", stopped)
    with pytest.raises(KeyboardInterrupt):
        evaluate_run(run_dir, batch_size=7)
    now = {path.relative_to(run_dir): path.read_bytes() for path in (run_dir / "eval").rglob("*") if path.is_file()}
    assert now == earlier and not [path.name for path in run_dir.iterdir() if path.name.startswith(".")]
    monkeypatch.undo()
    evaluate_run(run_dir)  # a whole new evaluation replaces it, keeping the classified images
    assert (run_dir / "eval" / "images" / "01_0_top3.png").exists()


@pytest.mark.trains
def test_a_run_folder_that_cannot_be_written_is_one_line_before_anything_loads(trained_run, monkeypatch):
    run_dir, _ = trained_run

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("harness.atomic.tempfile.mkdtemp", refused)
    monkeypatch.setattr("harness.reporting.evaluate_run.load_model", lambda run: pytest.fail("the model loaded"))
    with pytest.raises(UserError, match=r"cannot write into .*run \(Permission denied\); copy the run folder "
                                        "somewhere you can write, and evaluate the copy"):
        evaluate_run(run_dir)


@pytest.mark.trains
def test_not_a_run_and_damaged_models_are_refused(trained_run, tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        evaluate_run(tmp_path)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    run_dir, _ = trained_run
    (damaged / "config.json").write_text((run_dir / "config.json").read_text())
    with pytest.raises(UserError, match="no model.keras"):
        evaluate_run(damaged)
    model_bytes = (run_dir / "model.keras").read_bytes()
    (damaged / "model.keras").write_bytes(model_bytes[: len(model_bytes) // 2])
    result = run("evaluate.py", damaged)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {damaged / 'model.keras'} is damaged or truncated; train the run again"
    ]


@pytest.mark.trains
def test_a_model_with_python_code_is_not_loaded(trained_run, tmp_path):
    """Keras safe mode: a Lambda layer's function is never deserialised."""
    run_dir, _ = trained_run
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    (unsafe / "config.json").write_text((run_dir / "config.json").read_text())
    images = keras.Input((32, 32, 3))
    keras.Model(images, keras.layers.Lambda(lambda x: x * 2)(images)).save(unsafe / "model.keras")
    with pytest.raises(UserError, match="contains Python code .* it was not loaded"):
        evaluate_run(unsafe)


@pytest.mark.trains
def test_evaluating_in_the_process_that_trained_logs_no_native_error_and_agrees_with_it(trained_run, capfd):
    """compare.py trains, then evaluates in one process: TensorFlow's ops are deterministic by then (Keras'
    parallel input pipeline for arrays once made TensorFlow log an error line on each predict). The evaluation
    logs no native error, whatever its words, and measures what the training measured."""
    import re

    from harness.training.seeding import seed_everything

    run_dir = trained_run[0]
    seed_everything(0)  # as the training before it did
    capfd.readouterr()
    metrics, _ = evaluate_run(run_dir)
    stderr = capfd.readouterr().err
    assert not re.search(r"^[EF]\d{4} ", stderr, flags=re.MULTILINE), stderr  # absl's error and fatal lines
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-6)
    assert metrics["loss"] == pytest.approx(trained["test_loss"], abs=1e-4)

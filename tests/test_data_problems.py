"""Data problems are said, not silent: empty classes, names the plot font cannot draw, long loads."""

import csv
import json
import os
import pathlib
import pickle
import warnings

import matplotlib
import numpy as np
import pytest
from entry_points import run
from helpers import one_line_error, run_train, write_cifar_batch, write_image_folder
from matplotlib import font_manager

from harness.data import ImageDataset, Split, load_dataset, sample
from harness.errors import UserError
from harness.reporting import fonts


@pytest.fixture(scope="module")
def food_run(tmp_path_factory):
    """A run on a folder like a student's: CJK and accented class names, and no test images of pizza."""
    root = tmp_path_factory.mktemp("food")
    folder = write_image_folder(root / "food", classes=("寿司", "ラーメン", "pizza", "crème brûlée"))
    for image in (folder / "test" / "pizza").iterdir():
        image.unlink()
    result = run_train("--preset", "vit_test", "--data-dir", folder, "--epochs", 1, "--batch-size", 4,
                       "--run-dir", root / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    return folder, root / "run", result


@pytest.mark.trains
def test_a_class_without_test_images_is_warned_about_and_left_unmeasured(food_run):
    folder, run_dir, training = food_run
    assert (f"warning: {folder / 'test'} has no readable images of 1 class(es) (pizza): their test accuracy "
            "cannot be measured") in training.stderr
    evaluated = run("evaluate.py", run_dir)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    per_class = json.loads((run_dir / "eval" / "metrics.json").read_text())["per_class"]
    assert per_class["pizza"] == {"precision": per_class["pizza"]["precision"], "recall": None, "accuracy": None,
                                  "images": 0}


@pytest.mark.parametrize("contents", ["nothing", "an unreadable file"])
def test_a_training_class_without_images_is_refused_in_one_line(tmp_path, contents):
    folder = write_image_folder(tmp_path / "food", classes=("sushi", "ramen", "pizza"))
    for image in (folder / "train" / "pizza").iterdir():
        image.unlink()
    if contents != "nothing":
        (folder / "train" / "pizza" / "broken.jpg").write_bytes(b"not an image")
    result = run_train("--preset", "vit_test", "--data-dir", folder, "--epochs", 1, "--run-dir", tmp_path / "run")
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no readable images of 1 class(es) (pizza)" in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.trains
def test_names_the_font_cannot_draw_give_one_warning_and_real_names_stay_in_the_files(food_run):
    folder, run_dir, _ = food_run
    evaluated = run("evaluate.py", run_dir)
    assert evaluated.returncode == 0
    assert "Glyph" not in evaluated.stderr  # no raw Matplotlib warnings
    font_warnings = [line for line in evaluated.stderr.splitlines() if "can draw" in line]
    assert len(font_warnings) <= 1  # none where a CJK font is installed
    with open(run_dir / "eval" / "misclassified.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    names = {"寿司", "ラーメン", "pizza", "crème brûlée"}
    assert rows and all(row["true"] in names and row["predicted"] in names for row in rows)
    for row in rows:  # a student can open the image the model got wrong
        assert pathlib.Path(row["file"]).is_file() and pathlib.Path(row["file"]).parent.name == row["true"]


@pytest.mark.trains
def test_names_that_are_not_utf8_or_very_long_train_evaluate_and_report(tmp_path):
    """Latin-1 bytes in a class folder's and a file's name (a zip from an old Windows machine), written as
    escapes; a class and a file whose names are near the file system's 255-byte limit."""
    folder = write_image_folder(tmp_path / "images", classes=("cat", "dog"))
    long_class = "dog " + "very " * 49  # 249 characters
    for split in ("train", "test"):
        base = os.fsencode(folder / split)
        os.rename(base + b"/cat/0.png", base + b"/cat/\xff0.png")
        os.rename(base + b"/cat", base + b"/caf\xe9")
        os.rename(base + b"/dog/0.png", base + b"/dog/" + b"p" * 246 + b".png")
        os.rename(base + b"/dog", base + b"/" + long_class.encode())
    run_dir = tmp_path / "run"
    trained = run_train("--preset", "vit_test", "--data-dir", folder, "--epochs", 1, "--batch-size", 4,
                        "--run-dir", run_dir)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert json.loads((run_dir / "config.json").read_text())["class_names"] == ["caf\\xe9", long_class]
    evaluated = run("evaluate.py", run_dir)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    (run_dir / "eval" / "misclassified.csv").read_bytes().decode("utf-8")  # valid UTF-8 throughout
    report = run("visualize.py", run_dir, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "report" / "report.pdf").exists()


def test_drawable_names_fall_back_to_numbered_labels_when_no_font_has_the_characters(monkeypatch, capsys):
    only_dejavu = [f for f in font_manager.fontManager.ttflist if f.name.startswith("DejaVu")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", only_dejavu)
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["sans-serif"])
    assert fonts.drawable_names(["cat", "crème brûlée"]) == ["cat", "crème brûlée"]  # DejaVu has these
    assert fonts.drawable_names(["cat", "寿司", "ラーメン"]) == ["cat", "class 1", "class 2"]
    err = capsys.readouterr().err
    assert err.count("warning: no installed font can draw 2 class name(s)") == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # drawing the labels must not warn about missing glyphs
        figure = matplotlib.pyplot.figure()
        figure.suptitle(" ".join(["cat", "class 1", "class 2"]))
        figure.canvas.draw()
        matplotlib.pyplot.close(figure)


def test_drawable_names_add_an_installed_font_that_has_the_characters(monkeypatch):
    """A character DejaVu Sans lacks but another installed font has: that font joins the fallback list."""
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["sans-serif"])
    dejavu = fonts._characters(font_manager.findfont(font_manager.FontProperties(family=["DejaVu Sans"])))
    for entry in font_manager.fontManager.ttflist:
        if entry.name.startswith(("DejaVu", *fonts.PLACEHOLDER_FONTS)):
            continue
        extra = sorted(c for c in fonts._characters(entry.fname) - dejavu if chr(c).isalpha())
        if extra:
            break
    else:
        pytest.skip("no installed font has letters DejaVu Sans lacks")
    name = f"class {chr(extra[0])}"
    assert fonts.drawable_names([name]) == [name]
    assert len(matplotlib.rcParams["font.family"]) == 2


def test_loading_a_folder_or_an_archive_says_what_it_is_doing(tmp_path, monkeypatch, capsys):
    import shutil

    from harness.data import archives

    monkeypatch.setattr(archives, "CACHE", tmp_path / "cache")
    folder = write_image_folder(tmp_path / "images")
    archive = pathlib.Path(shutil.make_archive(str(tmp_path / "images"), "gztar", tmp_path, "images"))
    load_dataset(data_dir=archive)
    out = capsys.readouterr().out
    assert f"extracting {archive}" in out and "extracted in" in out
    assert f"loading 18 files from {tmp_path / 'cache'}" in out and "loaded 18 images in" in out
    load_dataset(data_dir=folder)
    assert f"loading 9 files from {folder / 'test'}" in capsys.readouterr().out


@pytest.mark.trains
def test_a_report_on_a_damaged_run_file_or_moved_data_says_which(tmp_path):
    folder = write_image_folder(tmp_path / "images")
    trained = run_train("--preset", "vit_test", "--data-dir", folder, "--epochs", 1, "--batch-size", 4,
                        "--run-dir", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr[-2000:]
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    (tmp_path / "run" / "manifest.json").write_text(manifest[: len(manifest) // 2])  # cut short, as by a full disk
    damaged = run("visualize.py", tmp_path / "run", "--out", tmp_path / "report")
    assert damaged.returncode == 2 and "manifest.json cannot be read" in damaged.stderr, damaged.stderr[-2000:]
    assert "Traceback" not in damaged.stderr
    (tmp_path / "run" / "manifest.json").write_text(manifest)
    folder.rename(tmp_path / "moved")
    result = run("visualize.py", tmp_path / "run", "--out", tmp_path / "report")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
    assert f"was trained on {folder}, which no longer exists" in errors[0] and "--data-dir" not in errors[0]
    assert not (tmp_path / "report").exists()


def cifar10_folder(folder, replaced=None):
    """A CIFAR-10 batch folder (2 images per batch, labels k and 9, 10 class names), where `replaced` maps a file's
    name to the dict pickled instead: a file that lies."""
    folder.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    for index, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]):
        write_cifar_batch(folder / name, images[2 * index : 2 * index + 2], [index, 9])
    contents = {"batches.meta": {"label_names": [f"class{i}" for i in range(10)]}, **(replaced or {})}
    for name, content in contents.items():
        with open(folder / name, "wb") as file:
            pickle.dump(content, file, protocol=4)  # (protocol 2 writes b"" as a call to bytes, which is refused)
    return folder


PIXELS = np.zeros((2, 3072), np.uint8)


@pytest.mark.parametrize("name, content, message", [
    ("data_batch_3", {"data": np.zeros((2, 3000), np.uint8), "labels": [0, 1]},
     ": 'data' is an array of uint8 with shape (2, 3000); a CIFAR batch holds uint8 pixels, 3072 values"),
    ("data_batch_3", {"data": np.zeros(6144, np.uint8), "labels": [0, 1]}, ": 'data' is an array of uint8 with shape"),
    ("test_batch", {"data": PIXELS.astype(np.float32), "labels": [0, 1]}, ": 'data' is an array of float32"),
    ("data_batch_3", {"data": PIXELS.tolist(), "labels": [0, 1]}, ": 'data' is a list;"),
    ("data_batch_3", {"data": PIXELS, "labels": [0]}, " holds 2 images but 1 labels"),
    ("test_batch", {"data": PIXELS, "labels": [0, 1, 2]}, " holds 2 images but 3 labels"),
    ("data_batch_3", {"data": PIXELS, "labels": [0, 10]},
     ": image 1 has label 10, outside 0-9 (the meta file names 10 classes); 1 label(s) are out of range"),
    ("test_batch", {"data": PIXELS, "labels": [-1, 3]}, ": image 0 has label -1, outside 0-9"),
    ("data_batch_3", {"data": PIXELS, "labels": [0.0, 1.5]}, ": 'labels' holds fractional numbers;"),
    ("data_batch_3", {"data": PIXELS, "labels": ["cat", "dog"]}, ": 'labels' holds text;"),
    ("data_batch_3", {"data": PIXELS, "labels": [[0], [1, 2]]}, ": 'labels' is not a flat list"),
    ("data_batch_3", {"data": PIXELS, "labels": 1}, ": 'labels' is not a flat list"),
    ("data_batch_3", {"data": PIXELS, "fine_labels": [0, 1]}, " has no 'data' and 'labels' entries"),
    ("data_batch_3", {"data": PIXELS[:0], "labels": []}, " holds no images"),
    ("batches.meta", {"names": ["cat", "dog"]}, " has no list of class names under 'label_names' (no such entry)"),
    ("batches.meta", {"label_names": b"cat dog"}, " has no list of class names under 'label_names' (a bytes)"),
    ("batches.meta", {"label_names": ["cat", 7]}, " has no list of class names"),
    ("batches.meta", {"label_names": ["cat"]}, " names 1 class(es) under 'label_names' (cat); a classifier needs"),
    ("batches.meta", {"label_names": ["cat", "cat", "dog"]}, " names 3 class(es)"),
    ("batches.meta", {"label_names": ["cat", ""]}, " names 2 class(es)"),
])
def test_cifar_batches_that_lie_are_refused_naming_the_file(tmp_path, name, content, message):
    folder = cifar10_folder(tmp_path / "cifar-10-batches-py", {name: content})
    with pytest.raises(UserError) as refused:
        load_dataset(data_dir=folder)
    assert f"{folder / name}{message}" in str(refused.value)


def test_labels_past_the_classes_the_meta_file_names_are_refused(tmp_path):
    """Every label is in range for CIFAR-10's 10 classes, but this meta file names only 2."""
    folder = cifar10_folder(tmp_path / "cifar-10-batches-py", {"batches.meta": {"label_names": ["cat", "dog"]}})
    with pytest.raises(UserError, match="data_batch_1: image 1 has label 9, outside 0-1 .the meta file names 2"):
        load_dataset(data_dir=folder)


def test_cifar100_fine_labels_past_the_last_class_are_refused(tmp_path):
    images = np.zeros((3, 32, 32, 3), np.uint8)
    write_cifar_batch(tmp_path / "train", images[:2], [5, 99], label_key="fine_labels")
    write_cifar_batch(tmp_path / "test", images[2:], [100], label_key="fine_labels")
    with open(tmp_path / "meta", "wb") as file:
        pickle.dump({"fine_label_names": [f"fine{i}" for i in range(100)]}, file)
    with pytest.raises(UserError, match=r"test: image 0 has label 100, outside 0-99"):
        load_dataset(data_dir=tmp_path)


def test_a_batch_that_lies_stops_train_py_in_one_line_before_the_run_folder(tmp_path):
    folder = cifar10_folder(tmp_path / "cifar-10-batches-py", {"data_batch_2": {"data": PIXELS, "labels": [3, 12]}})
    result = run_train("--data-dir", folder, "--epochs", 1, "--run-dir", tmp_path / "run")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
    assert f"{folder / 'data_batch_2'}: image 1 has label 12, outside 0-9" in errors[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.e2e
def test_cifar_to_folder_refuses_a_batch_that_lies_in_one_line(tmp_path):
    folder = cifar10_folder(tmp_path / "batches", {"test_batch": {"data": PIXELS, "labels": [1]}})
    for given, message in [(folder, f"{folder / 'test_batch'} holds 2 images but 1 labels"),
                           (tmp_path, f"{tmp_path} holds no CIFAR python batches")]:
        result = run("tools/cifar_to_folder.py", given, tmp_path / "out.tar.gz", fresh_process=True)
        assert message in one_line_error(result)
    assert not (tmp_path / "out.tar.gz").exists()


ORIGINAL_SAMPLE = sample.SAMPLE_PATH


def damaged_sample(path, **changes):
    """A copy of the embedded sample with `changes` (None: that array left out), written to `path`."""
    with np.load(ORIGINAL_SAMPLE) as arrays:
        fields = {name: arrays[name] for name in arrays.files}
    fields.update(changes)
    np.savez(path, **{name: array for name, array in fields.items() if array is not None})
    return path


def test_a_damaged_embedded_sample_is_refused_naming_the_file(tmp_path, monkeypatch):
    with np.load(ORIGINAL_SAMPLE) as arrays:
        labels, offsets = arrays["train_labels"].copy(), arrays["test_offsets"]
    labels[7] = 10
    for name, changes, message in [
        ("past", dict(train_labels=labels), "train_labels is empty or has labels outside 0-9"),
        ("negative", dict(train_labels=labels.astype(np.int64) - 11), "train_labels is empty or has labels outside"),
        ("fractional", dict(test_labels=np.zeros(1000)), "test_labels or test_offsets does not hold whole numbers"),
        ("short", dict(test_offsets=offsets[:-1]), "test_offsets does not cut test_jpeg into 1,000 images"),
        ("shuffled", dict(test_offsets=offsets[::-1]), "test_offsets does not cut test_jpeg"),
        ("nameless", dict(class_names=None), "it lacks class_names"),
        ("one class", dict(class_names=np.array(["cat"])), "class_names is <U3 of shape (1,)"),
    ]:
        monkeypatch.setattr(sample, "SAMPLE_PATH", damaged_sample(tmp_path / f"{name}.npz", **changes))
        with pytest.raises(UserError) as refused:
            load_dataset("cifar10_sample")
        assert f"{tmp_path / name}.npz is damaged: {message}" in str(refused.value), name
    cut = tmp_path / "cut.npz"
    whole = ORIGINAL_SAMPLE.read_bytes()
    cut.write_bytes(whole[: len(whole) // 2])  # as a failed copy or a full disk leaves it
    monkeypatch.setattr(sample, "SAMPLE_PATH", cut)
    with pytest.raises(UserError, match="cut.npz is damaged: it cannot be read"):
        load_dataset("cifar10_sample")


def test_no_source_can_hand_over_labels_that_are_not_class_indices():
    """The last guard, behind each source's own checks: labels are never cut, wrapped or past the class names."""
    images = np.zeros((2, 1, 1, 3), np.uint8)
    for labels in ([0.5, 1], [-1, 0], [0, 2**40], ["a", "b"], [[0], [1]]):
        with pytest.raises(ValueError, match="labels must be class indices"):
            Split(images, labels)
    with pytest.raises(ValueError, match="a test label is 2, but only 2 classes are named"):
        ImageDataset("two", ["a", "b"], Split(images, [0, 1]), Split(images, [0, 2]))

"""Data problems are said, not silent: empty classes, names the plot font cannot draw, long loads."""

import csv
import json
import os
import pathlib
import warnings

import matplotlib
import pytest
from conftest import write_image_folder
from matplotlib import font_manager
from test_cli import run_train
from test_user_errors import run

from harness.data import load_dataset
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

"""results/ is the one source of README's Results: the table there is what tools/results.py renders from it."""

import importlib.util
import json
import pathlib
import shutil
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def results_tool():
    spec = importlib.util.spec_from_file_location("results_tool", ROOT / "tools" / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_section(start, end):
    text = (ROOT / "README.md").read_text()
    return text[text.index(start) + len(start):text.index(end)].strip()


def readme_results_section():
    tool = results_tool()
    return readme_section(tool.README_START, tool.README_END)


def test_the_readme_results_table_is_rendered_from_results():
    tool = results_tool()
    runs = tool.read_runs()
    assert readme_results_section() == tool.results_table(runs)
    assert (ROOT / "results" / "README.md").read_text().count(tool.results_table(runs)) == 1


def test_every_speed_file_is_rendered_into_results_readme():
    tool = results_tool()
    tables = tool.speed_tables()
    assert (ROOT / "results" / "README.md").read_text().count(tables) == 1
    for path in sorted((ROOT / "results" / "speed").glob("*.json")):  # every row of every file is shown
        for row in json.loads(path.read_text())["results"]:
            gelu = f", {row['gelu']} GELU" if row.get("gelu") else ""  # what each ViT computes, where recorded
            assert f"| `{row['name']}`{gelu} | {row['params']:,} | {row['train_images_per_second']:,.1f} |" in tables


def test_the_readme_shows_the_speed_figure_drawn_from_results_speed(tmp_path):
    tool = results_tool()
    assert "(results/speed_beside_peers.png)" in (ROOT / "README.md").read_text()
    assert tool.SPEED_FIGURE.exists()
    drawn = tool.plot_speed_beside_peers(path=tmp_path / "speed.png")
    assert drawn is not None and drawn.stat().st_size > 10_000
    assert tool.plot_speed_beside_peers(pattern="no-such-file-*.json", path=tmp_path / "none.png") is None


def test_each_recipes_expected_accuracy_is_its_measured_one():
    from harness.training.recipes import RECIPES

    measured = results_tool().expected()
    for name, recipe in RECIPES.items():
        if name in measured:
            for model, text in measured[name].items():
                assert text in str(recipe["expected"][model]), (name, model, recipe["expected"])
        else:
            assert recipe["expected"] is None, f"{name}'s expected figures are not backed by a run in results/"


def test_the_results_table_summarises_seeds_as_mean_and_spread():
    tool = results_tool()
    assert tool.summary([91.0]) == "91.00%"
    assert tool.summary([90.0, 91.0, 92.0]) == "91.00% ± 1.00% (3 seeds)"


def test_every_measured_run_names_its_cpu_and_a_clean_commit():
    """A figure from uncommitted code cannot be reproduced, and one without its CPU cannot be compared."""
    manifests = sorted((ROOT / "results").glob("**/manifest.json"))
    assert manifests
    for path in manifests:
        manifest = json.loads(path.read_text())
        commit = manifest["git_commit"] or ""
        assert len(commit) == 40 and "dirty" not in commit, f"{path}: made from {commit or 'no commit'}"
        assert manifest.get("cpu"), f"{path} does not name its CPU"


def test_the_ablation_tables_in_the_docs_are_rendered_from_results():
    tool = results_tool()
    text = (ROOT / "docs" / "training.md").read_text()
    groups = tool.ABLATION_MARKER.findall(text)
    assert groups
    for group in groups:
        start, end = f"<!-- ablation:{group}:start -->", f"<!-- ablation:{group}:end -->"
        assert text[text.index(start) + len(start):text.index(end)].strip() == tool.ablation_table(group)


def test_the_budget_figure_exists_exactly_when_cpu_recipe_runs_do():
    tool = results_tool()
    assert tool.BUDGET_FIGURE.exists() == any(row["recipe"].startswith("cpu") for row in tool.read_runs())


def test_the_budget_points_reports_read_are_those_of_the_runs():
    """results/accuracy_by_budget.json, which compare.py's reports read, holds the committed runs' points."""
    from harness.reporting import budgets

    tool = results_tool()
    points = budgets.budget_points(tool.read_runs())
    reference = budgets.read_reference(tool.BUDGET_POINTS)
    assert reference is not None and reference["points"] == points
    for point in points:  # the mean over the seeds of that recipe's runs of that family
        rows = [row for row in tool.read_runs() if row["model"] == point["model"]
                and row["recipe"].startswith("cpu") and row["time_budget_minutes"] == point["budget_minutes"]]
        assert point["seeds"] == len(rows)
        assert point["accuracy"] == pytest.approx(sum(row["test_accuracy"] for row in rows) / len(rows), abs=0.01)


@pytest.fixture
def copied_results(tmp_path, monkeypatch):
    """tools/results.py pointed at a copy of results/, README.md and docs/training.md: what a test damages or renders
    there leaves the repository's own files alone."""
    tool = results_tool()
    root = tmp_path / "repository"
    shutil.copytree(ROOT / "results", root / "results")
    (root / "docs").mkdir()
    for name in ("README.md", "docs/training.md"):
        shutil.copy(ROOT / name, root / name)
    for name, value in [("ROOT", root), ("RESULTS", root / "results"),
                        ("BUDGET_FIGURE", root / "results" / tool.BUDGET_FIGURE.name),
                        ("BUDGET_POINTS", root / "results" / tool.BUDGET_POINTS.name),
                        ("SPEED_FIGURE", root / "results" / tool.SPEED_FIGURE.name)]:
        monkeypatch.setattr(tool, name, value)
    monkeypatch.setattr(sys, "argv", ["tools/results.py", "render"])
    return tool, root


RENDERED = ("README.md", "docs/training.md", "results/README.md")


def test_render_writes_into_the_tree_it_is_pointed_at(copied_results):
    tool, root = copied_results
    (root / "results" / "README.md").unlink()
    tool.main()
    assert tool.results_table(tool.read_runs()) in (root / "results" / "README.md").read_text()
    assert tool.results_table(tool.read_runs()) in (root / "README.md").read_text()


def damage(path, how):
    if how == "removed" and path.is_dir():
        shutil.rmtree(path)
    elif how == "removed":
        path.unlink()
    elif how == "cut short":  # as a full disk or a killed copy leaves it
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
    elif how == "a list":
        path.write_text("[]\n")
    else:  # {"dotted.field": value}
        data = json.loads(path.read_text())
        for field, value in how.items():
            *parents, last = field.split(".")
            place = data
            for part in parents:
                place = place[int(part)] if isinstance(place, list) else place[part]
            place[last] = value
        path.write_text(json.dumps(data))


SPEED_FILE = "speed/" + min((ROOT / "results" / "speed").glob("*.json")).name  # any one of them


@pytest.mark.parametrize("file, how, message", [
    ("cpu10/cnn-s0/metrics.json", "cut short", "cannot be read as JSON"),
    ("cpu10/cnn-s0/metrics.json", "a list", "holds a JSON list, not an object"),
    ("cpu30/cnn-s0/config.json", "removed", "config.json is missing"),
    ("cpu10/hybrid-s0/manifest.json", "removed", "manifest.json is missing"),
    ("cpu10/cnn-s0/measurement.json", "removed", "measurement.json is missing"),
    ("cpu10/cnn-s0/metrics.json", {"test_accuracy": "0.85"}, ': test_accuracy is "0.85", not a number'),
    ("cpu10/cnn-s0/metrics.json", {"epochs_trained": True}, ": epochs_trained is true, not a whole number"),
    ("cpu10/cnn-s0/metrics.json", {"model": "transformer"}, ': model is "transformer", not one of cnn, vit, hybrid'),
    ("cpu10/cnn-s0/metrics.json", {"time_budget.actual_seconds": None},
     ": time_budget.actual_seconds is null, not a number"),
    ("cpu30/cnn-s0/manifest.json", {"versions": ["keras"]}, ': versions is ["keras"], not an object'),
    ("cpu30/cnn-s0/measurement.json", {"load_average_before": []}, " has no load_average_before.0"),
    ("cpu30/cnn-s0/config.json", {"split_sizes.train": "45000"}, ': split_sizes.train is "45000", not a whole number'),
    (SPEED_FILE, "cut short", "cannot be read as JSON"),
    (SPEED_FILE, {"results.0.params": "big"}, ': results.0.params is "big", not a whole number'),
    (SPEED_FILE, {"speedup_over_peers": None}, ": speedup_over_peers is null, not an object"),
    ("ablations/fast-cnn-4-epochs/no-boost/metrics.json", {"best_val_accuracy": None},
     ": best_val_accuracy is null, not a number"),
    ("ablations/hybrid-stem-6min", "removed", " is not there"),
])
def test_render_on_a_damaged_results_tree_names_the_file_in_one_line_and_writes_nothing(
        copied_results, capsys, file, how, message):
    tool, root = copied_results
    before = {name: (root / name).read_bytes() for name in RENDERED}
    damage(root / "results" / file, how)
    with pytest.raises(SystemExit) as exit:
        tool.main()
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and str(root / "results" / file) in lines[0] and message in lines[0], lines[0]
    assert {name: (root / name).read_bytes() for name in RENDERED} == before

"""results/ is the one source of README's Results: the table there is what tools/results.py renders from it."""

import importlib.util
import json
import pathlib

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


def test_the_readme_speed_tables_are_rendered_from_results_speed():
    tool = results_tool()
    tables = tool.speed_tables()
    assert readme_section(tool.SPEED_START, tool.SPEED_END) == tool.speed_tables(tool.README_SPEED).strip()
    assert "--augmentation none" in readme_section(tool.SPEED_START, tool.SPEED_END)
    assert (ROOT / "results" / "README.md").read_text().count(tables) == 1
    for path in sorted((ROOT / "results" / "speed").glob("*.json")):  # every row of every file is shown
        for row in json.loads(path.read_text())["results"]:
            gelu = f", {row['gelu']} GELU" if row.get("gelu") else ""  # what each ViT computes, where recorded
            assert f"| `{row['name']}`{gelu} | {row['params']:,} | {row['train_images_per_second']:,.1f} |" in tables


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

"""The report's written conclusion and its settings table say what the numbers mean, and only what applied."""

from harness.reporting.conclusion import conclusion, sampling_error, training_data
from harness.reporting.report import applied_setting


def run(model, accuracy, seed=0, train_images=45_000, budget=None, epochs=10, preset=None):
    return {"label": f"{model} #{seed}", "model": model, "preset": preset or f"{model}_preset",
            "test_accuracy": accuracy, "test_images": 10_000, "train_images": train_images, "time_budget": budget,
            "epochs": epochs}


def test_one_seed_each_is_weighed_against_the_test_sets_sampling_error():
    text = "\n".join(conclusion([run("vit", 0.70), run("cnn", 0.85)]))
    assert ("The CNN (cnn_preset) won: 85.00% test accuracy against 70.00% for the ViT (vit_preset), "
            "15.00 points" in text)
    assert f"± {100 * sampling_error(0.85, 10_000):.2f} points" in text and "A clear difference." in text


def test_seeds_are_weighed_against_their_spread():
    runs = [run("vit", a, seed) for seed, a in enumerate((0.70, 0.72, 0.71))]
    runs += [run("cnn", a, seed) for seed, a in enumerate((0.715, 0.705, 0.725))]
    text = "\n".join(conclusion(runs))
    assert "3 seeds" in text and "seed spread (± 1.00 points)" in text and "Too close to call" in text


def test_the_caveat_names_a_small_training_set_or_a_shared_budget():
    small = "\n".join(conclusion([run("vit", 0.36, train_images=3_600), run("cnn", 0.51, train_images=3_600)]))
    assert "only 3,600 images" in small and "smoke test" in small
    budget = "\n".join(conclusion([run("vit", 0.7, budget=1800.0), run("cnn", 0.85, budget=1800.0)]))
    assert "same 30-minute budget" in budget
    assert "One model" in "\n".join(conclusion([run("cnn", 0.5)]))


def test_the_training_data_is_named_with_its_size_and_source():
    config = {"dataset": "cifar10_sample", "split_sizes": {"train": 3600, "validation": 400, "test": 1000}}
    assert training_data(config) == ("3,600 training, 400 validation images of cifar10_sample "
                                     "(the embedded sample in harness/data)")
    folder = {"dataset": "cifar10-jpeg", "data_dir": "/data/c10", "split_sizes": {"train": 45000, "validation": 0}}
    assert training_data(folder) == "45,000 training images of cifar10-jpeg (image folder or batch files at /data/c10)"


def test_settings_that_did_not_apply_are_not_shown():
    assert applied_setting({"model": "cnn", "drop_path_rate": 0.0}, "drop_path_rate") is None
    assert applied_setting({"model": "vit", "drop_path_rate": 0.1}, "drop_path_rate") == 0.1
    assert applied_setting({"model": "vit", "warmup_epochs": 5.0, "epochs": 1}, "warmup_epochs") == 1
    assert applied_setting({"model": "vit", "warmup_epochs": 0.0, "epochs": 3}, "warmup_epochs") is None
    assert applied_setting({"model": "vit", "time_budget": 1800.0}, "time_budget") == "30 min"
    assert applied_setting({"model": "vit", "time_budget": None}, "time_budget") is None


def measured(recipe, model, accuracy, minutes, budget):
    return {"recipe": recipe, "model": model, "preset": f"{model}_preset", "test_accuracy": accuracy,
            "train_minutes": minutes, "time_budget_minutes": budget}


def test_budget_points_average_the_seeds_of_each_cpu_recipe_and_family():
    from harness.reporting.budgets import budget_points

    runs = [measured("cpu30", "cnn", 88.0, 29.8, 30), measured("cpu30", "cnn", 90.0, 29.9, 30),
            measured("cpu10", "vit", 61.0, 9.9, 10), measured("smoke", "vit", 40.0, 3.0, None)]
    assert budget_points(runs) == [
        {"model": "vit", "preset": "vit_preset", "budget_minutes": 10, "minutes": 9.9, "accuracy": 61.0,
         "spread": 0.0, "seeds": 1},
        {"model": "cnn", "preset": "cnn_preset", "budget_minutes": 30, "minutes": 29.85, "accuracy": 89.0,
         "spread": 1.41, "seeds": 2}]


def test_the_leader_at_each_budget_is_named_best_first():
    from harness.reporting.budgets import budget_points, leaders

    runs = [measured("cpu10", "cnn", 85.17, 9.9, 10), measured("cpu10", "vit", 61.19, 9.9, 10),
            measured("cpu10", "hybrid", 74.36, 9.9, 10), measured("cpu30", "hybrid", 83.0, 29.9, 30),
            measured("cpu30", "hybrid", 85.0, 29.9, 30), measured("cpu30", "cnn", 82.0, 29.8, 30)]
    assert leaders(budget_points(runs)) == [
        "- 10 minutes: CNN 85.17%, hybrid 74.36%, ViT 61.19%; the CNN leads.",
        "- 30 minutes: hybrid 84.00% (± 1.41, 2 seeds), CNN 82.00%; the hybrid leads."]


def test_a_missing_or_damaged_points_file_gives_no_reference(tmp_path):
    from harness.reporting.budgets import read_reference

    assert read_reference(tmp_path / "absent.json") is None
    for text in ("{", "[]", '{"cpus": [], "points": [{"model": "mlp", "minutes": 1, "accuracy": 2, "spread": 0, '
                 '"budget_minutes": 1}]}', '{"cpus": [], "points": [{"model": "cnn"}]}'):
        (tmp_path / "points.json").write_text(text)
        assert read_reference(tmp_path / "points.json") is None
    (tmp_path / "points.json").write_text('{"cpus": ["a CPU"], "points": [{"model": "cnn", "minutes": 9.9, '
                                          '"accuracy": 85.2, "spread": 0, "budget_minutes": 10}]}')
    assert read_reference(tmp_path / "points.json")["cpus"] == ["a CPU"]


def test_a_report_of_budget_runs_draws_them_over_the_measured_ones_and_names_each_budgets_leader(tmp_path):
    import types

    from harness.reporting import budgets, report

    result = types.SimpleNamespace(label="cnn #0", config={"model": "cnn", "time_budget": 600.0},
                                   summary={"train_seconds": 594.0, "test_accuracy": 0.85})
    figures = {}
    lines = report._budget_figure([result], figures, tmp_path)
    assert (tmp_path / figures["Accuracy by training budget"][0]).stat().st_size > 5_000
    reference = budgets.read_reference()  # the committed results/accuracy_by_budget.json
    assert lines[1].startswith("At each budget, in this project's measured runs")
    assert lines[3:] == budgets.leaders(reference["points"]) and len(lines) > 3
    unbudgeted = types.SimpleNamespace(label="cnn #1", config={"model": "cnn", "time_budget": None}, summary={})
    assert report._budget_figure([unbudgeted], {}, tmp_path) == []

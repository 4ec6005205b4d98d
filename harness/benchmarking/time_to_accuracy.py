"""Time-to-accuracy of finished train.py runs, read from their run directories."""

import numpy as np

from harness.training.run_dir import open_finished_run


def time_to_accuracy(run_dir, target):
    """Accuracy, timing and the training seconds until validation accuracy first reached `target`."""
    run, _ = open_finished_run(run_dir)
    metrics, history = run.read_metrics(), run.read_history()
    elapsed, reached = 0.0, None
    for row in history:
        elapsed += float(row["seconds"])
        if reached is None and row.get("val_accuracy") and float(row["val_accuracy"]) >= target:
            reached = round(elapsed, 1)
    return {
        "run": str(run.path),
        "model": f"{metrics['model']}:{metrics['preset']}",
        "dataset": metrics["dataset"],
        "epochs": metrics["epochs"],
        "test_accuracy": metrics["test_accuracy"],
        "best_val_accuracy": metrics["best_val_accuracy"],
        "train_seconds": metrics["train_seconds"],
        "images_per_second": metrics["images_per_second"],
        f"seconds_to_val_{target:g}": reached,
        "precision": metrics["precision"],
        "backend": metrics["backend"],
    }


def mean_and_spread(rows):
    """Test accuracy and training time as mean ± standard deviation over the runs of each model and
    dataset (seeds of one recipe), for headline numbers."""
    groups = {}
    for row in rows:
        groups.setdefault((row["model"], row["dataset"], row["epochs"]), []).append(row)
    summary = []
    for (model, dataset, epochs), members in groups.items():
        accuracy = np.array([m["test_accuracy"] for m in members])
        seconds = np.array([m["train_seconds"] for m in members])
        summary.append({
            "model": model, "dataset": dataset, "epochs": epochs, "runs": len(members),
            "test_accuracy_mean": float(accuracy.mean()),
            "test_accuracy_std": float(accuracy.std(ddof=1)) if len(members) > 1 else None,
            "train_seconds_mean": float(seconds.mean()),
        })
    return summary

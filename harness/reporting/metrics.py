"""Evaluation numbers from predicted probabilities, in plain numpy."""

import numpy as np


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def confusion_matrix(labels, predictions, num_classes):
    """counts[true, predicted]; it sums to the number of images."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def top_k_accuracy(probabilities, labels, k):
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def classification_metrics(probabilities, labels, class_names):
    """Accuracy, top-5 accuracy (with more than 5 classes), cross-entropy and per-class figures."""
    num_classes = len(class_names)
    predictions = probabilities.argmax(axis=1)
    counts = confusion_matrix(labels, predictions, num_classes)
    true_positives = np.diag(counts)
    predicted_totals, true_totals = counts.sum(axis=0), counts.sum(axis=1)
    chosen = probabilities[np.arange(len(labels)), labels]
    metrics = {
        "accuracy": float(np.mean(predictions == labels)),
        "loss": float(-np.mean(np.log(np.clip(chosen, 1e-12, 1.0)))),
        "images": int(len(labels)),
    }
    if num_classes > 5:
        metrics["top5_accuracy"] = top_k_accuracy(probabilities, labels, 5)
    metrics["per_class"] = {
        name: {
            "precision": float(true_positives[i] / predicted_totals[i]) if predicted_totals[i] else None,
            "recall": float(true_positives[i] / true_totals[i]) if true_totals[i] else None,
            # A class's accuracy is the share of its images classified correctly, i.e. its recall.
            "accuracy": float(true_positives[i] / true_totals[i]) if true_totals[i] else None,
            "images": int(true_totals[i]),
        }
        for i, name in enumerate(class_names)
    }
    return metrics, counts


def misclassified_rows(probabilities, labels, class_names, top=3, sources=None):
    """One row per wrong prediction, the most confident first; with `sources` (the images' file paths),
    a "file" column to open the image by."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predictions[wrong]], kind="stable")]
    rows = []
    for index in wrong:
        best = np.argsort(-probabilities[index])[:top]
        row = {
            "index": int(index),
            "true": class_names[labels[index]],
            "predicted": class_names[predictions[index]],
            "confidence": round(float(probabilities[index, predictions[index]]), 6),
        }
        if sources is not None:
            row["file"] = str(sources[index])
        for rank, k in enumerate(best, start=1):
            row[f"top{rank}"] = class_names[k]
            row[f"top{rank}_probability"] = round(float(probabilities[index, k]), 6)
        rows.append(row)
    return rows

"""notebooks/vit_vs_cnn.ipynb runs top to bottom on the embedded sample, and is committed without outputs."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "vit_vs_cnn.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 6 and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the notebook runs on the default backend here")
    monkeypatch.setenv("NOTEBOOK_QUICK", "1")  # the smallest models, one epoch
    monkeypatch.setenv("NOTEBOOK_OUT", str(tmp_path / "runs"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # raises on a failing cell
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "".join(output.get("text", "") for output in outputs)
    assert "layer by layer = the whole model" in text and "vit vit_test: test accuracy" in text
    assert "my_image.png: " in text  # the own-image cell classified it
    assert sum("image/png" in output.get("data", {}) for output in outputs) >= 5  # patches, report figures, rollout
    for name in ("report.md", "report.html", "report.pdf"):
        assert (tmp_path / "runs" / "report" / name).exists()

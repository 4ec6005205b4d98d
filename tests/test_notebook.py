"""notebooks/vit_vs_cnn.ipynb runs top to bottom on the embedded sample, and is committed without outputs."""

import os
import pathlib
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "vit_vs_cnn.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 6 and all(cell.outputs == [] and cell.execution_count is None for cell in code)


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_the_first_cell_asks_for_the_address_and_takes_a_local_folder(tmp_path):
    """Outside the project (as on Colab): the placeholder address stops with what to set; a folder is used as is."""
    setup = "".join(nbformat.read(NOTEBOOK, as_version=4).cells[1].source)
    environment = {key: value for key, value in os.environ.items() if key != "VIT_REPOSITORY"}
    stopped = subprocess.run([sys.executable, "-c", setup], cwd=tmp_path, capture_output=True, text=True,
                             env=environment)
    assert stopped.returncode == 1 and "Set REPOSITORY above (or VIT_REPOSITORY)" in stopped.stderr
    recorded = ("import subprocess\ncalls = []\nsubprocess.run = lambda command, **options: calls.append(command)\n"
                f"{setup}\nprint('calls', [command[:3] for command in calls])")
    local = subprocess.run([sys.executable, "-c", recorded], cwd=tmp_path, capture_output=True, text=True,
                           env={**environment, "VIT_REPOSITORY": str(NOTEBOOK.parents[1])})
    assert local.returncode == 0, local.stderr[-2000:]
    assert f"project: {NOTEBOOK.parents[1]}" in local.stdout and "'clone'" not in local.stdout
    assert f"calls [[{sys.executable!r}, '-m', 'pip']]" in local.stdout  # only the install of the requirements

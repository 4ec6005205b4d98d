"""The package layout: imports only point down (CLIs -> harness -> models), data -> training -> reporting."""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
MODEL_PACKAGES = {"vit_tf", "cnn_baseline"}
SHARED_MODEL_PARTS = "model_parts"  # below both model packages, which never import each other
MODELS = MODEL_PACKAGES | {SHARED_MODEL_PARTS}
HELPERS = {"harness", "harness.errors", "harness.cli", "harness.backend", "harness.atomic",
           "harness.timm_import"}  # cross-cutting

# Package -> the project packages its modules may import (besides itself).
ALLOWED = {
    "model_parts": set(),
    "vit_tf": {SHARED_MODEL_PARTS},
    "cnn_baseline": {SHARED_MODEL_PARTS},
    "harness.helpers": HELPERS,
    "harness.models": HELPERS | MODELS,
    "harness.data": HELPERS,
    "harness.training": HELPERS | MODELS | {"harness.models", "harness.data"},
    "harness.reporting": HELPERS | MODELS | {"harness.models", "harness.data", "harness.training",
                                                     "harness.sweeps"},
    "harness.benchmarking": HELPERS | MODELS | {"harness.models", "harness.data", "harness.training"},
    "harness.sweeps": HELPERS | MODELS | {"harness.models", "harness.data", "harness.training"},
}
PROJECT_ROOTS = ("model_parts", "vit_tf", "cnn_baseline", "harness")


def package_of(module):
    """The layer a dotted module name belongs to, e.g. harness.training.trainer -> harness.training."""
    parts = module.split(".")
    if parts[0] != "harness":
        return parts[0]
    if module in HELPERS:
        return "harness.helpers"
    return ".".join(parts[:2])


def project_imports(path):
    """Every project module a file imports, at top level or inside functions."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from harness import data" imports harness.data; "from harness.x import y" imports harness.x(.y)
            names = [f"{node.module}.{alias.name}" if node.module == "harness" else node.module for alias in node.names]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] in PROJECT_ROOTS)


def library_modules():
    for root in PROJECT_ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            yield module, path


@pytest.mark.parametrize("module,path", list(library_modules()), ids=lambda value: str(value))
def test_imports_point_down(module, path):
    layer = package_of(module)
    allowed = ALLOWED[layer] | {layer}
    wrong = sorted({name for name in project_imports(path) if package_of(name) not in {package_of(a) for a in allowed}})
    assert not wrong, f"{module} ({layer}) imports {wrong}; it may use only {sorted(allowed)}"


def test_every_package_says_what_lives_there_and_what_it_may_use():
    for init in [REPO / "model_parts/__init__.py", REPO / "vit_tf/__init__.py", REPO / "cnn_baseline/__init__.py",
                 *(REPO / "harness").rglob("__init__.py")]:
        docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
        name = init.relative_to(REPO)
        assert len(docstring.splitlines()) >= 3, f"{name} needs a docstring: what lives here, what it uses"
        assert any(word in docstring for word in ("May use", "Uses", "never")), name


def test_the_rule_catches_an_upward_import(tmp_path):
    """The check above must be able to fail: a training module importing reporting is flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from harness.reporting.report import write_report\n")
    imported = {package_of(name) for name in project_imports(bad)}
    assert imported == {"harness.reporting"}
    assert "harness.reporting" not in ALLOWED["harness.training"]


def test_the_two_model_packages_never_import_each_other():
    for package, other in (("vit_tf", "cnn_baseline"), ("cnn_baseline", "vit_tf")):
        for path in sorted((REPO / package).rglob("*.py")):
            assert not [name for name in project_imports(path) if name.split(".")[0] == other], path


def test_the_code_passes_the_linter():
    """ruff with pyproject.toml's settings (line length 120, pyflakes, pycodestyle, import order)."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -r requirements-test.txt)")
    from ruff import find_ruff_bin

    # ruff's own binary, not `python -m ruff`: no fresh Python process, so the test stays in the fast subset
    result = subprocess.run([find_ruff_bin(), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]

"""The package layout: imports only point down (CLIs -> harness -> models), data -> training -> reporting."""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
MODEL_PACKAGES = {"vit_tf", "cnn_baseline"}
HELPERS = {"harness", "harness.errors", "harness.cli", "harness.backend"}  # cross-cutting, import nothing above

# Package -> the project packages its modules may import (besides itself).
ALLOWED = {
    "vit_tf": MODEL_PACKAGES,
    "cnn_baseline": MODEL_PACKAGES,
    "harness.helpers": HELPERS,
    "harness.models": HELPERS | MODEL_PACKAGES,
    "harness.data": HELPERS,
    "harness.training": HELPERS | MODEL_PACKAGES | {"harness.models", "harness.data"},
    "harness.reporting": HELPERS | MODEL_PACKAGES | {"harness.models", "harness.data", "harness.training",
                                                     "harness.sweeps"},
    "harness.benchmarking": HELPERS | MODEL_PACKAGES | {"harness.models", "harness.data", "harness.training"},
    "harness.sweeps": HELPERS | MODEL_PACKAGES | {"harness.models", "harness.data", "harness.training"},
}
PROJECT_ROOTS = ("vit_tf", "cnn_baseline", "harness")


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
    for init in [REPO / "vit_tf/__init__.py", REPO / "cnn_baseline/__init__.py", *(REPO / "harness").rglob("__init__.py")]:
        docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(docstring.splitlines()) >= 3, f"{init.relative_to(REPO)} needs a docstring: what lives here, what it uses"
        assert any(word in docstring for word in ("May use", "Uses", "never")), init.relative_to(REPO)


def test_the_rule_catches_an_upward_import(tmp_path):
    """The check above must be able to fail: a training module importing reporting is flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from harness.reporting.report import write_report\n")
    imported = {package_of(name) for name in project_imports(bad)}
    assert imported == {"harness.reporting"}
    assert "harness.reporting" not in ALLOWED["harness.training"]

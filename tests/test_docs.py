"""README.md and docs/ point at things that exist: every relative link, and every command-line option they name."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "results" / "README.md"]
# Options of other programs that the pages show in commands: pip, uv, pytest, tensorboard, srun, tar, git.
OTHER_PROGRAMS = {"--index-url", "--no-index", "--no-deps", "--target", "--logdir", "--help", "--ntasks-per-node",
                  "--nodes", "--gres", "--depth", "--branch", "--upgrade", "--quiet", "--extra-index-url", "--pdb",
                  "--python", "--compile-bytecode"}


def our_options():
    """Every option an entry point or tool of ours declares (add_argument("--name", ...))."""
    sources = [*REPO.glob("*.py"), *(REPO / "tools").glob("*.py"), *(REPO / "harness").rglob("*.py")]
    return {option for path in sources for option in re.findall(r"""["'](--[a-z][a-z0-9-]*)["']""", path.read_text())}


def heading_anchors(page):
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_relative_link_and_anchor_exists(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in heading_anchors(linked), f"{page.name} links to {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_option_named_exists(page):
    known = our_options() | OTHER_PROGRAMS
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", page.read_text()))
    assert not named - known, f"{page.name} names options no command has: {sorted(named - known)}"

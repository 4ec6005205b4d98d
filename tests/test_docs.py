"""README.md and docs/ point at things that exist: every relative link, and every command-line option they name."""

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "results" / "README.md"]
# Options of other programs that the pages show in commands: pip, uv, pytest (and tests/conftest.py's
# --record-durations), tensorboard, srun, tar, git, python3.
OTHER_PROGRAMS = {"--index-url", "--no-index", "--no-deps", "--target", "--logdir", "--help", "--ntasks-per-node",
                  "--nodes", "--gres", "--depth", "--branch", "--upgrade", "--quiet", "--extra-index-url", "--pdb",
                  "--python", "--compile-bytecode", "--version", "--record-durations", "--lf", "--deselect", "--sw"}


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


SCRIPTS_WITH_PARSERS = ("train.py", "evaluate.py", "visualize.py", "compare.py", "benchmark.py", "scaling.py")
# What a parser may say about a placeholder value (RUN, DIR, my_food): the command's shape is still right.
PLACEHOLDER_COMPLAINTS = ("does not exist", "is not a file", "is not a folder", "no such file", "not found")


def shown_commands():
    """(page, script, arguments) of every `python SCRIPT.py ...` that README, docs and the notebook show, in code
    blocks and inline code; placeholders such as `...` skip a command."""
    import json
    import shlex

    texts = [(page, page.read_text()) for page in PAGES]
    notebook = REPO / "notebooks" / "vit_vs_cnn.ipynb"
    texts += [(notebook, "\n".join("".join(cell["source"]) for cell in json.loads(notebook.read_text())["cells"]))]
    found = []
    for page, text in texts:
        text = text.replace("\\\n", " ")  # a command continued over lines
        # inline code wrapped over lines in prose joins up; fenced blocks keep one command per line
        parts = re.split(r"(```.*?```)", text, flags=re.DOTALL)
        text = "".join(part if part.startswith("```") else
                       re.sub(r"`[^`]+`", lambda code: re.sub(r"\s*\n\s*", " ", code.group(0)), part)
                       for part in parts)
        for line in re.findall(r"python3? ((?:\S+/)?\w+\.py(?: [^`\n]*)?)", text):
            line = line.split(" #")[0].split(" &&")[0].split(" |")[0].strip()
            script, _, rest = line.partition(" ")
            if script not in SCRIPTS_WITH_PARSERS or "..." in rest or "<" in rest or "$" in rest:
                continue
            try:
                found.append((page.relative_to(REPO).as_posix(), script, shlex.split(rest)))
            except ValueError:  # an unbalanced quote: prose, not a command
                continue
    return found


def test_the_pages_show_commands_of_every_script():
    assert {script for _, script, _ in shown_commands()} >= {"train.py", "evaluate.py", "compare.py", "benchmark.py"}


@pytest.mark.parametrize("page, script, arguments", shown_commands(), ids=lambda value: str(value)[:60])
def test_every_command_shown_parses_with_its_scripts_own_parser(page, script, arguments, capsys):
    """Each option exists on the script named, with a valid value: not only somewhere in the project."""
    import importlib

    module = importlib.import_module(script.removesuffix(".py"))
    parse = getattr(module, "parse_args", None) or module.build_parser().parse_args
    try:
        parse(arguments)
    except SystemExit as exit_:
        message = capsys.readouterr().err.strip()
        assert exit_.code == 0 or any(text in message.lower() for text in PLACEHOLDER_COMPLAINTS), (
            f"{page} shows `python {script} {' '.join(arguments)}`: {message}")

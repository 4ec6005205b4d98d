"""What every command line's parser accepts: options spelled out in full, nothing else."""

import importlib

import pytest

SCRIPTS = {"train": [], "evaluate": ["runs/a"], "visualize": ["runs/a", "--out", "report"], "compare": [],
           "benchmark": [], "scaling": []}  # with what each needs besides the option under test


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_abbreviated_option_is_refused(script, capsys):
    parser = importlib.import_module(script).build_parser()
    options = {option for action in parser._actions for option in action.option_strings}
    full = next(option for option in sorted(options) if option.startswith("--") and len(option) > 6
                and option[:-1] not in options)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args([*SCRIPTS[script], full[:-1], "1"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and full[:-1] in lines[0], lines


def test_a_folder_given_as_pretrained_is_asked_for_the_file_in_it(tmp_path):
    from harness.errors import UserError
    from harness.training.config import TrainConfig, resolve

    with pytest.raises(UserError, match="is a folder; give the checkpoint file itself"):
        resolve(TrainConfig(model="vit", pretrained=str(tmp_path)))


def test_compare_names_its_own_option_when_a_run_folder_is_taken(tmp_path, capsys):
    import compare

    (tmp_path / "out" / "cnn").mkdir(parents=True)
    (tmp_path / "out" / "cnn" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_:
        compare.main(["--out", str(tmp_path / "out"), "--epochs", "1"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1, lines
    assert "holds other files (notes.txt); choose a new --out folder" in lines[0]
    assert "--run-dir" not in lines[0] and "--overwrite" not in lines[0]


@pytest.mark.parametrize("content, said", [('{"model": "vit", "prese', "cannot be read"), ("", "cannot be read"),
                                           ("[1, 2]", "holds a list"), (b"\xff\xfe", "cannot be read")])
def test_a_damaged_run_file_is_one_line_naming_it(tmp_path, content, said):
    from harness.errors import UserError
    from harness.training.run_dir import RunDirectory, read_json

    path = tmp_path / "metrics.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError, match=said) as error:
        read_json(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UserError, match=said):
        RunDirectory(tmp_path).read_metrics()

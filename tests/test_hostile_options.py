"""Every option of every entry point, given hostile values: exit code 2 and one line, never a traceback.

The table below must name every option an entry point has (a new option fails the first test until
its hostile values are listed). Each value runs the real `main()` in this process after the entry
point's valid base arguments, so the hostile value is the only thing wrong.
"""

import argparse
import importlib

import pytest
from helpers import run_train, write_image_folder

NUMBER = ["", "abc", "nan", "inf", "-inf", "1e400", "-3"]
WHOLE = [*NUMBER, "0", "1.5", "9" * 30]
FRACTION = [*NUMBER, "1", "2"]
NAME = ["", "   ", "no_such_thing"]
MISSING_PATH = ["", "/nonexistent/folder"]
UNWRITABLE = ["", "/proc/vit-hostile"]  # nobody, not even root, can create files in /proc
DURATION = [*NUMBER, "30", "0s", "1h30", "99999h"]

HOSTILE = {
    "train.py": {
        "--dataset": NAME, "--data-dir": MISSING_PATH, "--image-size": [*WHOLE, "30", "100000"],
        "--val-fraction": FRACTION, "--model": NAME, "--preset": [*NAME, "r50_vit_b16"],
        "--patch-size": [*WHOLE, "5", "64"],
        "--hidden-dim": [*WHOLE, "17"], "--depth": WHOLE, "--heads": [*WHOLE, "5", "100000"], "--mlp-dim": WHOLE,
        "--drop-path-rate": FRACTION, "--recipe": NAME, "--epochs": [*WHOLE, "1000000"], "--batch-size": WHOLE,
        "--time-budget": DURATION,
        "--learning-rate": [*NUMBER, "0"], "--weight-decay": NUMBER, "--optimizer": NAME,
        "--warmup-epochs": NUMBER, "--label-smoothing": FRACTION, "--augmentation": NAME, "--mixing": NAME,
        "--mixing-alpha": [*NUMBER, "0"], "--keep": NAME, "--patience": WHOLE, "--seed": [*NUMBER, "1.5"],
        "--precision": NAME, "--jit-compile": NAME, "--run-dir": UNWRITABLE, "--resume": MISSING_PATH,
        "--pretrained": [*MISSING_PATH, "README.md"], "--steps": [*WHOLE, "10000000"],
        "--gradient-clip-norm": [*NUMBER, "0"], "--train-size": [*WHOLE, "1000000000"],
        "--train-fraction": [*NUMBER, "0", "1.5"], "--teacher": [*MISSING_PATH, "README.md"], "--distillation": NAME,
        "--distillation-alpha": FRACTION, "--distillation-temperature": [*NUMBER, "0", "1000"],
        "--devices": ["", "0", "-1", "1.5", "abc", "5000", "64"], "--data-on-device": [*NAME, "on"],
        "--join-timeout": DURATION, "--gelu": NAME,
    },
    "evaluate.py": {"run_dir": MISSING_PATH, "--dataset": NAME, "--data-dir": MISSING_PATH,
                    "--image": ["", "/nonexistent.png"], "--top-k": WHOLE, "--batch-size": WHOLE,
                    "--export": [*UNWRITABLE, "README.md"], "--format": [*NAME, "onnx"]},
    "visualize.py": {"run_dirs": MISSING_PATH, "--out": UNWRITABLE, "--batch-size": WHOLE,
                     "--sweep": [*MISSING_PATH, "README.md"]},
    "scaling.py": {"--dataset": NAME, "--data-dir": MISSING_PATH, "--recipe": [*NAME, "finetune"],
                   "--sizes": [*WHOLE, "100000000", "999999"], "--seeds": [*NUMBER, "1.5"], "--vit-preset": NAME,
                   "--cnn-preset": NAME, "--batch-size": WHOLE, "--out": UNWRITABLE},
    "compare.py": {"--dataset": NAME, "--data-dir": MISSING_PATH, "--recipe": NAME, "--vit-preset": NAME,
                   "--cnn-preset": NAME, "--pretrained": [*MISSING_PATH, "README.md"], "--epochs": WHOLE,
                   "--batch-size": WHOLE, "--seed": [*NUMBER, "1.5"], "--out": UNWRITABLE,
                   "--hybrid-preset": [*NAME, "vit_test"], "--hybrid-pretrained": [*MISSING_PATH, "README.md"],
                   "--cnn-pretrained": [*MISSING_PATH, "README.md"], "--time-budget": DURATION},
    "benchmark.py": {"--model": [*NAME, "vit:no_such_preset", "mlp:resnet8", "hybrid:vit_test"], "--batch-size": WHOLE,
                     "--warmup-steps": WHOLE, "--steps": WHOLE, "--precision": NAME, "--jit-compile": NAME,
                     "--runs": MISSING_PATH, "--target": FRACTION, "--out": ["", "/proc/vit-hostile.json", "/"],
                     "--devices": WHOLE, "--mixing": NAME, "--data-on-device": [*NAME, "on"],
                     "--peers": NAME, "--rounds": WHOLE, "--augmentation": NAME, "--gelu": NAME},
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    folder = write_image_folder(root / "images")
    result = run_train("--preset", "vit_test", "--data-dir", folder, "--epochs", 1, "--batch-size", 4,
                       "--run-dir", root / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "run"


def base_arguments(script, option, run, tmp_path):
    """Valid arguments that, without the hostile one, would do a small job."""
    length = [] if option == "--time-budget" else ["--epochs", "1"]  # the two exclude each other
    if script == "train.py":
        return [] if option == "--resume" else ["--preset", "vit_test", *length, "--run-dir", str(tmp_path / "r")]
    if script == "evaluate.py":
        return [] if option == "run_dir" else [str(run)]
    if script == "visualize.py":
        return ["--out", str(tmp_path / "report")] if option == "run_dirs" else [str(run), str(run), "--out",
                                                                                  str(tmp_path / "report")]
    if script == "scaling.py":
        return ["--vit-preset", "vit_test", "--cnn-preset", "resnet_test", "--sizes", "100", "--out",
                str(tmp_path / "s")]
    if script == "compare.py":
        return ["--vit-preset", "vit_test", "--cnn-preset", "resnet_test", *length, "--out", str(tmp_path / "c")]
    return ["--model", "vit:vit_test", "--batch-size", "2", "--warmup-steps", "1", "--steps", "1", "--out",
            str(tmp_path / "b.json")]


def options(script):
    parser = importlib.import_module(script.removesuffix(".py")).build_parser()
    found = {}
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction)):
            continue
        found[action.option_strings[0] if action.option_strings else action.dest] = action
    return found


@pytest.mark.parametrize("script", list(HOSTILE))
def test_the_table_names_every_option(script):
    assert set(options(script)) == set(HOSTILE[script]), "list hostile values for every option"


CASES = [(script, option, value) for script, table in HOSTILE.items() for option, values in table.items()
         for value in values]


@pytest.mark.parametrize("script, option, value", CASES, ids=[f"{s}:{o}={v[:12]!r}" for s, o, v in CASES])
@pytest.mark.trains
def test_a_hostile_value_is_one_line_and_exit_code_2(script, option, value, finished_run, tmp_path, capsys):
    arguments = base_arguments(script, option, finished_run, tmp_path)
    arguments += [value] if not option.startswith("--") else [option, value]
    main = importlib.import_module(script.removesuffix(".py")).main
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert exit_.value.code == 2, stderr[-1500:]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-1500:]

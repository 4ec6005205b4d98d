"""manifest.json: what produced a run, so that it can be reproduced and audited."""

import hashlib
import os
import platform
import subprocess
import sys

import keras
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # harness/training/ -> repo


def dataset_fingerprint(dataset):
    """sha256 of every image, label and class name, train and test: equal data, equal fingerprint."""
    digest = hashlib.sha256()
    for split in (dataset.train, dataset.test):
        digest.update(np.ascontiguousarray(split.images).tobytes())
        digest.update(np.ascontiguousarray(split.labels).tobytes())
    digest.update("\n".join(dataset.class_names).encode())
    return digest.hexdigest()


def git_commit():
    """The repository's commit, marked "+dirty" with uncommitted changes; None outside git."""
    try:
        run = lambda *args: subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,  # noqa: E731
                                           timeout=10, check=True).stdout.strip()
        return run("rev-parse", "HEAD") + ("+dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions():
    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    for name in ("tensorflow", "jax", "torch", "keras_hub", "timm"):  # the last two: benchmark.py --peers
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = module.__version__
    return versions


def cpu_description(cpuinfo="/proc/cpuinfo"):
    """The CPU's model and widest vector instructions ("AMD EPYC, AVX-512 BF16"): CPU speeds measured on one
    2-core machine differ several-fold from another's (AVX2 or AVX-512), so every speed figure names it."""
    try:
        with open(cpuinfo) as lines:
            fields = {key.strip(): value.strip() for key, colon, value in (line.partition(":") for line in lines)
                      if colon}
    except OSError:  # not Linux
        return platform.processor() or "unknown CPU"
    flags = set(fields.get("flags", "").split())
    widest = next((name for flag, name in (("avx512_bf16", "AVX-512 BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))
                   if flag in flags), None)
    return ", ".join(filter(None, [fields.get("model name", platform.processor()), widest]))


def build_manifest(config, dataset, precision, device):
    return {
        "command": ["(a notebook)"] if "ipykernel" in sys.argv[0] else [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "config": config,
        "seed": config["seed"],
        "backend": keras.backend.backend(),
        "precision": precision,
        "device": device,
        "versions": library_versions(),
        "dataset": {"name": dataset.name, "sha256": dataset_fingerprint(dataset),
                    "train": len(dataset.train), "test": len(dataset.test)},
        "pretrained_checkpoint": config.get("pretrained_checkpoint"),  # file name and sha256, if any
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "cpu": cpu_description(),
        "load_average": [round(load, 2) for load in os.getloadavg()],  # 1, 5, 15 minutes: was the machine busy?
    }

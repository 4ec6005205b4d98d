"""The experiment harness shared by both model families: data -> training -> reporting, benchmarking beside.

Uses the model packages (vit_tf, cnn_baseline), which never import it. At this level: the model-family
table (models.py) and cross-cutting helpers: errors.py (one-line user errors), cli.py, backend.py (starting Keras),
atomic.py (folders written whole).
"""

import importlib
import sys

from harness.backend import check_backend_name
from harness.errors import UserError, not_installed

# What the command lines import before Keras (backend.start() checks Keras and its backend): a missing one
# is one line saying which environment to use, not a ModuleNotFoundError traceback.
for _module, _package in (("numpy", "numpy"), ("PIL", "pillow"), ("tqdm", "tqdm")):
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError:
        sys.stderr.write(f"error: {not_installed(_package)}\n")
        raise SystemExit(2) from None

# Keras fails on an unknown backend only when it is imported, after a script has parsed its options; refused
# here instead, before any script parses them (--help included).
try:
    check_backend_name()
except UserError as error:
    sys.stderr.write(f"error: {error}\n")
    raise SystemExit(2) from None

"""One benchmark row, measured in a fresh process so that earlier rows (their input-pipeline threads,
caches and memory peaks) cannot change it. benchmark.py runs it as

    python -m harness.benchmarking.one '{"variant": "vit:vit_cifar_tiny", "batch_size": 512, ...}' OUT_JSON

with the fields of a `RowSettings` (harness.benchmarking.variants), and "variant" for its kind and preset, as JSON.
"""

import dataclasses
import json
import pathlib
import sys

from harness.errors import UserError, cli_main
from harness.training.devices import start


@cli_main
def main():
    settings, out = json.loads(sys.argv[1]), sys.argv[2]
    start(settings["devices"])  # Keras, with virtual CPU devices where several are asked for without a GPU
    from harness.benchmarking.measure import environment
    from harness.benchmarking.run import run_variant
    from harness.benchmarking.variants import PEER_KINDS, RowSettings, parse_variant

    kind, preset = parse_variant(settings.pop("variant"))
    settings = RowSettings(**settings)
    try:
        if kind in PEER_KINDS:
            from harness.benchmarking.peers import run_peer

            measurement = run_peer(kind, preset, settings)
        else:
            measurement = run_variant(kind, preset, settings)
    except ValueError as error:  # e.g. a batch the model cannot take
        raise UserError(str(error)) from None
    pathlib.Path(out).write_text(json.dumps({**dataclasses.asdict(measurement), "environment": environment()}))


if __name__ == "__main__":
    main()

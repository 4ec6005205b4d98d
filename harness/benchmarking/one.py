"""One benchmark row, measured in a fresh process so that earlier rows (their input-pipeline threads,
caches and memory peaks) cannot change it. benchmark.py runs it as

    python -m harness.benchmarking.one KIND:PRESET BATCH_SIZE PRECISION JIT_COMPILE WARMUP_STEPS STEPS OUT_JSON DEVICES
"""

import dataclasses
import json
import pathlib
import sys

from harness.errors import UserError, cli_main
from harness.training.devices import start


@cli_main
def main():
    variant, batch_size, precision, jit_compile, warmup_steps, steps, out, devices = sys.argv[1:]
    start(devices)  # Keras, with virtual CPU devices where several are asked for without a GPU
    from harness.benchmarking.measure import environment
    from harness.benchmarking.run import run_variant
    from harness.benchmarking.variants import parse_variant

    kind, preset = parse_variant(variant)
    try:
        measurement = run_variant(kind, preset, int(batch_size), precision, jit_compile, int(warmup_steps), int(steps),
                                  devices=devices)
    except ValueError as error:  # e.g. a batch the model cannot take
        raise UserError(str(error)) from None
    pathlib.Path(out).write_text(json.dumps({**dataclasses.asdict(measurement), "environment": environment()}))


if __name__ == "__main__":
    main()

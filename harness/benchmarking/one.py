"""One benchmark row, measured in a fresh process so that earlier rows (their input-pipeline threads,
caches and memory peaks) cannot change it. benchmark.py runs it as

    python -m harness.benchmarking.one KIND:PRESET BATCH_SIZE PRECISION JIT_COMPILE WARMUP_STEPS STEPS OUT_JSON
"""

import dataclasses
import json
import pathlib
import sys

from harness import quiet

quiet.silence_tensorflow_startup()

from harness.errors import UserError, cli_main  # noqa: E402


@cli_main
def main():
    variant, batch_size, precision, jit_compile, warmup_steps, steps, out = sys.argv[1:]
    from harness.benchmarking.measure import environment
    from harness.benchmarking.run import parse_variant, run_variant

    try:
        kind, preset = parse_variant(variant)
        measurement = run_variant(kind, preset, int(batch_size), precision, jit_compile, int(warmup_steps), int(steps))
    except ValueError as error:
        raise UserError(str(error)) from None
    pathlib.Path(out).write_text(json.dumps({**dataclasses.asdict(measurement), "environment": environment()}))


if __name__ == "__main__":
    main()

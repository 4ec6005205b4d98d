"""Data-parallel training over a machine's devices, with each backend's own engine: `keras.distribution`
(DataParallel over a 1-D DeviceMesh) on JAX, `tf.distribute.MirroredStrategy` on TensorFlow, where
`keras.distribution` is not supported. Nothing here averages a gradient by hand.

`--batch-size` is the global batch, split evenly across the devices, as both engines count it. Without
an accelerator, N devices are N virtual CPU devices: they exercise the machinery, not the speed.
"""

import contextlib
import dataclasses
import os
import socket
import time

from harness import backend
from harness.errors import UserError


def start(requested="1", multi_host=False, join_timeout=60.0, join=True):
    """Starts Keras (harness.backend.start) with `requested` devices visible: on a machine without an
    accelerator, N > 1 asks for N virtual CPU devices, which must exist before the backend starts.
    With `multi_host`, this process then joins the others of the job (JAX only), waiting at most
    `join_timeout` seconds in all; `join=False` (a dry run) checks the request without joining."""
    if multi_host and backend.chosen_backend() != "jax":
        raise UserError("--multi-host runs on JAX's jax.distributed; set KERAS_BACKEND=jax")
    count = None if requested in (None, "all") else int(requested)
    if count and count > (os.cpu_count() or 1):
        count = None  # past one virtual device per core, none is made; without a GPU the placement then refuses
    chosen = backend.chosen_backend()
    if count and count > 1 and chosen == "jax":  # only the CPU platform takes this; GPUs stay as they are
        flag = f"--xla_force_host_platform_device_count={count}"
        if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    keras = backend.start()
    if count and count > 1 and chosen == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            with backend.native_noise_filtered("splitting the CPU into virtual devices"):
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
                tf.config.list_logical_devices("CPU")  # starts the runtime now, while its start-up chatter is filtered
    if multi_host and join:
        _join_the_job(join_timeout)
    return keras


def _join_the_job(timeout):
    """jax.distributed.initialize: from a scheduler's environment (SLURM, Open MPI, ...), which JAX
    detects, or from JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES, JAX_PROCESS_ID."""
    import jax

    number = lambda name: int(os.environ[name]) if os.environ.get(name, "").isdigit() else None  # noqa: E731
    address, process_id = os.environ.get("JAX_COORDINATOR_ADDRESS"), number("JAX_PROCESS_ID")
    deadline = time.monotonic() + timeout  # the wait for the coordinator and JAX's own share one timeout
    if address and process_id:  # JAX's client would wait the whole timeout, then abort the process natively
        _wait_for_coordinator(address, timeout)
    try:
        jax.distributed.initialize(num_processes=number("JAX_NUM_PROCESSES"), process_id=process_id,
                                   initialization_timeout=max(1, round(deadline - time.monotonic())))
    except (ValueError, RuntimeError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"--multi-host could not join the job's other processes ({reason}); start one process per "
                        "host with your scheduler (SLURM: srun) or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES "
                        "and JAX_PROCESS_ID") from None


def _wait_for_coordinator(address, timeout):
    """Returns once process 0's coordinator at host:port accepts a connection; a UserError after `timeout` s."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"JAX_COORDINATOR_ADDRESS={address} is not host:port (e.g. node-0:1234)")
    deadline = time.monotonic() + timeout
    while True:
        try:
            left = max(0.1, deadline - time.monotonic())
            socket.create_connection((host.strip("[]"), int(port)), timeout=min(5.0, left)).close()
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise UserError(f"--multi-host could not reach the job's coordinator at {address} within "
                                f"{timeout:g} s ({error.strerror or error}); start process 0 first, check the "
                                "address, or wait longer with --join-timeout") from None
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def process_index_and_count():
    """(this process's index, processes in the job): (0, 1) unless JAX runs multi-host."""
    import keras

    if keras.backend.backend() != "jax":
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()


@dataclasses.dataclass
class Placement:
    """Where a run trains: `count` devices and how they are arranged, as config.json records it."""

    count: int
    engine: str  # "single device", "keras.distribution.DataParallel" or "tf.distribute.MirroredStrategy"
    devices: list
    per_device_batch: int
    process: int = 0  # this process's index in a multi-host job, and the job's processes
    processes: int = 1

    @property
    def shard(self):
        """(index, count): which slice of each global batch this process feeds."""
        return self.process, self.processes

    def describe(self):
        if self.count == 1:
            return f"1 device ({self.devices[0]})"
        hosts = (f"; process {self.process} of {self.processes} feeds "
                 f"{self.count // self.processes * self.per_device_batch}"
                 " images per step" if self.processes > 1 else "")
        return (f"{self.count} devices ({', '.join(self.devices)}) with {self.engine}, {self.per_device_batch} "
                f"images each per step{hosts}")


def accelerators_or_cpus():
    """The devices data parallelism may use: the backend's accelerators, else its CPU devices."""
    import keras

    name = keras.backend.backend()
    if name == "jax":
        import jax

        return [f"{d.platform}:{d.id}" for d in jax.devices()]  # the default platform: GPUs/TPUs, else CPUs
    if name == "tensorflow":
        import tensorflow as tf

        return [d.name for d in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))]
    import torch

    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]


def resolve_placement(requested, batch_size, smallest_batch):
    """The Placement for `requested` ("all" or N) devices, or a one-line UserError: too few devices, a
    batch that does not split evenly, a backend without data parallelism."""
    import keras

    available = accelerators_or_cpus()
    count = len(available) if requested in (None, "all") else int(requested)
    if count == 1:
        return Placement(1, "single device", available[:1], batch_size)
    name = keras.backend.backend()
    if name == "torch":
        raise UserError(f"--devices {requested}: Keras' data parallelism is not available on the PyTorch backend; "
                        "use KERAS_BACKEND=jax or tensorflow, or --devices 1")
    if count > len(available):
        if all("cpu" in device.lower() for device in available):
            raise UserError(f"--devices {count}: there is no GPU here, and virtual CPU devices stop at one per core "
                            f"({os.cpu_count()}); give at most {os.cpu_count()}")
        raise UserError(f"--devices {count}: this machine has {len(available)} ({', '.join(available)}); "
                        f"give at most {len(available)}, or --devices all")
    for batch, what in ((batch_size, "--batch-size"), (smallest_batch, "an epoch's batch (all the training images)")):
        if batch % count:
            lower, higher = batch - batch % count, batch + count - batch % count
            raise UserError(f"{what} {batch} does not split evenly across {count} devices; use a multiple of "
                            f"{count}, e.g. {lower or higher} or {higher}, or other --devices")
    engine = "keras.distribution.DataParallel" if name == "jax" else "tf.distribute.MirroredStrategy"
    process, processes = process_index_and_count()
    if processes > 1 and count != len(available):
        raise UserError(f"--multi-host trains on every device of the job ({len(available)}); use --devices all")
    return Placement(count, engine, available[:count], batch_size // count, process, processes)


@contextlib.contextmanager
def data_parallel(placement):
    """Builds, compiles, trains, evaluates and saves inside this for the placement's devices."""
    if placement.count == 1:
        yield
        return
    import keras

    if keras.backend.backend() == "jax":
        import jax

        by_name = {f"{d.platform}:{d.id}": d for d in jax.devices()}
        mesh = keras.distribution.DeviceMesh((placement.count,), ["batch"], [by_name[n] for n in placement.devices])
        previous = keras.distribution.distribution()
        # Each process already feeds its own share of every batch (array_pipeline.process_share).
        keras.distribution.set_distribution(keras.distribution.DataParallel(device_mesh=mesh, auto_shard_dataset=False))
        try:
            yield
        finally:
            keras.distribution.set_distribution(previous)
    else:
        import tensorflow as tf

        with tf.distribute.MirroredStrategy(devices=placement.devices).scope():
            yield

"""Training on several processes (machines) with JAX.

Keras 3 trains across machines on the JAX backend only:
`keras.distribution.initialize` joins the processes, and a
`keras.distribution.DataParallel` over every process's devices splits each
global batch between them. TensorFlow's multi-worker strategy does not work
with Keras 3's `fit` (keras-team/keras#20585), and Keras has no multi-host
path on PyTorch. See `docs/scaling.md` for the launch commands.

- `initialize` joins this process to the run and sets data parallelism
  over all the run's devices. Call it before building the model.
- `process_id`, `num_processes` and `is_chief` say where this process
  stands; only the chief (process 0) should write files.
- `mean_over_processes` averages per-process means, weighted by counts:
  `ComprehensiveAttributionModel.adapt` uses it so that every process
  gets the fill value of the global data.

Data: by default every process passes the same `tf.data.Dataset` of
global batches to `fit` and Keras gives each process its share. With
`initialize(auto_shard_dataset=False)` each process passes its own share
of every global batch (`global_batch_size // num_processes()` images),
e.g. arrays it loaded itself.
"""

import os

import keras
import numpy as np

_JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
_NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"


def _from_environment(coordinator_address, num_processes, process_id):
    """Fills what is `None` from the launcher's environment variables."""
    env = os.environ
    if coordinator_address is None:
        if env.get(_JOB_ADDRESSES):
            coordinator_address = env[_JOB_ADDRESSES].split(",")[0]
        elif env.get("JAX_COORDINATOR_ADDRESS"):
            coordinator_address = env["JAX_COORDINATOR_ADDRESS"]
        elif env.get("MASTER_ADDR") and env.get("MASTER_PORT"):
            coordinator_address = f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}"
    if num_processes is None:
        value = env.get(_NUM_PROCESSES) or env.get("WORLD_SIZE")
        num_processes = None if value is None else int(value)
    if process_id is None:
        value = env.get(_PROCESS_ID) or env.get("RANK")
        process_id = None if value is None else int(value)
    return coordinator_address, num_processes, process_id


def initialize(
    coordinator_address=None,
    num_processes=None,
    process_id=None,
    data_parallel=True,
    auto_shard_dataset=True,
):
    """Joins this process to a multi-process run (JAX backend).

    Run the same program on every process (one per machine, or several on
    one machine for testing), each with its own `process_id`. Arguments
    left `None` are read from the environment: first Keras' variables
    (`KERAS_DISTRIBUTION_JOB_ADDRESSES`, whose first address is the
    coordinator, `KERAS_DISTRIBUTION_NUM_PROCESSES`,
    `KERAS_DISTRIBUTION_PROCESS_ID`), then `JAX_COORDINATOR_ADDRESS`, then
    the `MASTER_ADDR`/`MASTER_PORT`, `WORLD_SIZE` and `RANK` that
    `torchrun`-style launchers set. What is still unknown is left to JAX's
    own cluster detection (Cloud TPU VMs, SLURM, Open MPI).

    On CPUs the processes exchange gradients with gloo collectives. Call
    this before anything runs on JAX (building a model included).

    Args:
        coordinator_address: `"host:port"` of process 0, reachable from
            every process.
        num_processes: int, the number of processes in the run.
        process_id: int in `[0, num_processes)`; process 0 coordinates.
        data_parallel: bool, also set a `keras.distribution.DataParallel`
            over the devices of all processes (the global batch is split
            between them and the gradients are averaged).
        auto_shard_dataset: bool, as in `keras.distribution.DataParallel`.
            `True`: every process passes the same `tf.data.Dataset` of
            global batches to `fit`, and Keras gives each process its
            share. `False`: every process passes its own share (arrays or
            any dataset) of every global batch, `global_batch_size //
            num_processes` images, in process order.

    Returns:
        The `keras.distribution.DataParallel` that was set, or `None`.

    Raises:
        RuntimeError: on a backend other than JAX.
    """
    backend = keras.backend.backend()
    if backend != "jax":
        raise RuntimeError(
            "Training across processes needs the JAX backend "
            "(KERAS_BACKEND=jax): Keras 3's `fit` does not support "
            "TensorFlow's multi-worker strategy (keras-team/keras#20585) "
            f"and has no multi-process path on {backend!r}. On one machine, "
            "see docs/scaling.md for several devices."
        )
    import jax

    coordinator_address, num_processes, process_id = _from_environment(
        coordinator_address, num_processes, process_id
    )
    if num_processes is not None and process_id is not None:
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"`process_id` must lie in [0, {num_processes}). Received: "
                f"process_id={process_id}"
            )
    # CPU devices exchange gradients through gloo (ignored by GPU and TPU
    # devices). Set before JAX starts its backends, unless the user chose.
    if jax.config.jax_cpu_collectives_implementation in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(
        coordinator_address, num_processes=num_processes, process_id=process_id
    )
    if not data_parallel:
        return None
    distribution = keras.distribution.DataParallel(
        devices=keras.distribution.list_devices(),
        auto_shard_dataset=auto_shard_dataset,
    )
    keras.distribution.set_distribution(distribution)
    return distribution


def num_processes():
    """The number of processes in the run (1 without `initialize`)."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def process_id():
    """This process's index in the run (0 without `initialize`)."""
    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def is_chief():
    """Whether this process writes the run's files (process 0)."""
    return process_id() == 0


def mean_over_processes(mean, count):
    """The mean over all processes of per-process means.

    Args:
        mean: this process's mean, a float array.
        count: how many values that mean covers (e.g. pixels).

    Returns:
        A float64 NumPy array, the same on every process: the means of all
        processes weighted by their counts (this process's `mean` alone
        when the run has one process).
    """
    mean = np.asarray(mean, "float64")
    if num_processes() == 1:
        return mean
    from jax.experimental import multihost_utils

    # float32 on the wire (JAX's default): the relative error of the counts
    # is at most 6e-8, the same on every process.
    local = np.concatenate([mean.reshape(-1), [float(count)]])
    gathered = np.asarray(
        multihost_utils.process_allgather(local.astype("float32")), "float64"
    ).reshape(num_processes(), -1)
    counts = gathered[:, -1]
    means = gathered[:, :-1]
    total = counts.sum()
    if total == 0:
        return mean
    return (means * counts[:, None]).sum(axis=0).reshape(mean.shape) / total

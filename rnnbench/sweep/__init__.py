"""Running a sweep: a grid of runs, planned, trained by an executor and stored as each finishes.

>>> from rnnbench.sweep import run_sweep          # the driver's docstring runs one

driver        run_sweep: plan, skip what is stored, hand the rest to an executor, store each
runs          one run (run_one, its record) and the executors' interface; LocalExecutor
processes     ProcessExecutor: --jobs N runs at once in worker processes
ray_executor  RayExecutor: one Ray task per run
tensorboard   a sweep's events as TensorBoard scalars
"""

from rnnbench.sweep.driver import (
    BIG_SWEEP_RUNS,
    EXECUTORS,
    DeviceSharing,
    Shard,
    SweepPlan,
    crowded_cores_notice,
    local_executor,
    machine_notices,
    plan,
    plan_sweep,
    run_sweep,
    sweep_executor,
)
from rnnbench.sweep.runs import Executor, Finished, LocalExecutor, Stopper, run_one, run_record

__all__ = [
    "BIG_SWEEP_RUNS",
    "EXECUTORS",
    "DeviceSharing",
    "Executor",
    "Finished",
    "LocalExecutor",
    "Shard",
    "Stopper",
    "crowded_cores_notice",
    "local_executor",
    "machine_notices",
    "plan_sweep",
    "SweepPlan",
    "plan",
    "run_one",
    "run_record",
    "run_sweep",
    "sweep_executor",
]

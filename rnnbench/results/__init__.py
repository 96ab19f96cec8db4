"""The results store: what is stored about every run and measurement, and where.

>>> from rnnbench import results
>>> df = results.load("results")                           # the published rows
>>> {"sweep", "baseline", "compare"} <= set(df.kind)
True

records   one JSON record per run, read as a Record (schema, identity across schemas), written atomically;
          loaded as one tidy DataFrame; export; merging folders
folder    ResultsFolder, the owner of a folder's layout (runs/, checkpoints/, claims/); each
          run's checkpoints are a core.checkpoint.RunFiles
claims    the claim files that let several sweeps share one folder
"""

from rnnbench.core.checkpoint import RunFiles
from rnnbench.results.folder import ResultsFolder, apply_merge
from rnnbench.results.records import (
    EXPORT_FORMATS,
    FINISHED,
    SCHEMA_VERSION,
    MergePlan,
    Record,
    export,
    finished,
    flatten,
    frame,
    identity,
    iter_records,
    load,
    load_curves,
    make_record,
    plan_merge,
    read_record,
    runs_dir,
    stored_identities,
    utc_now,
    write_run,
)

__all__ = [
    "EXPORT_FORMATS",
    "FINISHED",
    "SCHEMA_VERSION",
    "MergePlan",
    "Record",
    "ResultsFolder",
    "RunFiles",
    "apply_merge",
    "export",
    "finished",
    "flatten",
    "frame",
    "identity",
    "iter_records",
    "load",
    "load_curves",
    "make_record",
    "plan_merge",
    "read_record",
    "runs_dir",
    "stored_identities",
    "utc_now",
    "write_run",
]

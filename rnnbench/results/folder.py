"""A results folder and everything in it: runs/ (one record per run), checkpoints/ (each run's
best.pt and latest.pt) and claims/ (which sweep trains which run).

    >>> from rnnbench.results.folder import ResultsFolder
    >>> folder = ResultsFolder("results")
    >>> folder.runs.name, folder.run_files("ab12cd34ef56").best.name
    ('runs', 'best.pt')

ResultsFolder is the one owner of the folder's layout: a sweep prepares it (a write probe, and the
temporaries of writes a kill interrupted removed), scans what is stored once, claims runs, stores
each finished run's record with its best weights, and `rnnbench sample` finds a checkpoint in it.
Each run's checkpoints are a core.checkpoint.RunFiles, the only code that names, writes or reads
best.pt and latest.pt: the Trainer saves through it while a run trains (in this process or a
worker's), and the folder through it when a run comes back from elsewhere (a Ray task) or from
another folder (merge).
"""

from __future__ import annotations

import contextlib
import difflib
import json
from pathlib import Path

from rnnbench.core.checkpoint import RunFiles
from rnnbench.errors import UsageError
from rnnbench.events import Notice, OnEvent, ignore
from rnnbench.files import check_writable, default_results_dir, remove_stray_temporaries, write_atomic
from rnnbench.results import records
from rnnbench.results.claims import Claims


class ResultsFolder:
    """A results folder (`path` None: files.default_results_dir()); see the module's docstring."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_results_dir()
        self._records: dict[str, records.Record] | None = None  # run id -> record, from the one scan

    def __str__(self) -> str:
        return str(self.path)

    @property
    def runs(self) -> Path:
        return records.runs_dir(self.path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def prepare(self) -> None:
        """Before any work: the folder can be written (one line and exit 2 if not), and no stray
        temporary of a write that a kill interrupted is left in it."""
        check_writable(self.path, "results folder")
        remove_stray_temporaries(self.path)

    def run_files(self, run_id: str) -> RunFiles:
        return RunFiles(self.checkpoints / run_id)

    def claims(self) -> Claims:
        return Claims(self.path)

    # --- step-time probes (sweep.estimate) ------------------------------------------------------------

    @property
    def probes_file(self) -> Path:
        return self.path / "probes.json"

    def probes(self) -> dict[str, dict]:
        """The probes earlier plans and sweeps measured here, by shape (sweep.estimate.probe_key)."""
        try:
            found = json.loads(self.probes_file.read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def store_probe(self, key: str, probe: dict) -> None:
        """Keep a probe for the next plan or sweep (written atomically; two sweeps writing at once
        may lose one, which is then probed again: nothing else depends on it)."""
        with contextlib.suppress(OSError):  # a folder that cannot be written keeps no probe
            self.path.mkdir(parents=True, exist_ok=True)
            write_atomic(self.probes_file, json.dumps(self.probes() | {key: probe}, indent=1, sort_keys=True).encode())

    # --- what is stored ----------------------------------------------------------------------------

    def scan(self) -> list[records.Record]:
        """Every readable record, read once (the one scan of a sweep) and kept up to date by store()."""
        if self._records is None:
            self._records = {r.run_id: r for r in records.iter_records(self.path)[0]}
        return list(self._records.values())

    def stored(self, statuses: tuple[str, ...] | None = records.FINISHED) -> dict[str, records.Record]:
        """identity -> record, for the records with one of `statuses` (None: any)."""
        return {r.identity: r for r in self.scan() if statuses is None or r.status in statuses}

    def read(self, run_id: str) -> records.Record | None:
        """The record stored under `run_id` on disk now, or None."""
        try:
            return records.read_record(self.runs / f"{run_id}.json")
        except (ValueError, FileNotFoundError):
            return None

    def finished_now(self, run_id: str) -> bool:
        """Whether `run_id` is stored as finished on disk now (another sweep may have stored it
        since the scan): one file read, not a scan."""
        return records.finished(self.path, run_id)

    def store(
        self,
        record: records.Record,
        best: bytes | None = None,
        replaces: str | None = None,
        keep_checkpoints: bool = True,
    ) -> None:
        """Write a record atomically (the one writer of every kind of row: sweep runs, compare-devices,
        n-gram baselines), with the best weights a run brought back from elsewhere (`best`);
        `replaces`: the id a record of the same run is stored under (schema 1), removed once this one
        is written. A finished run keeps only its best.pt; rows without weights pass keep_checkpoints=False."""
        records.write_run(self.path, record, replaces)
        files = self.run_files(record.run_id)
        if keep_checkpoints and best is not None:
            files.save_best_bytes(best)
        if keep_checkpoints and record.finished:
            files.drop_latest()
        if self._records is not None:
            self._records.pop(replaces, None)
            self._records[record.run_id] = record

    def unreadable_best(self, run_ids: list[str], on_event: OnEvent = ignore) -> None:
        """Say which finished runs' best.pt cannot be read: their losses stand, but `rnnbench sample`
        cannot use them until `--force` retrains them."""
        for run_id in run_ids:
            files = self.run_files(run_id)
            if not files.best_is_readable():
                on_event(
                    Notice(
                        f"run {run_id} is finished but its {files.best} is unreadable: `rnnbench sample` "
                        "cannot use it; `rnnbench sweep --force` with the same settings trains it again"
                    )
                )

    def find_checkpoint(self, ref: str) -> Path:
        """A checkpoint file: `ref` itself if it is a file, else the best.pt of the run whose id is
        `ref` or starts with it (as git takes a commit's prefix); UsageError, with close matches, if none."""
        path = Path(ref)
        if path.is_file():
            return path
        candidate = self.run_files(ref).best
        if candidate.is_file():
            return candidate
        folder = self.checkpoints
        known = sorted(p.name for p in folder.iterdir() if RunFiles(p).best.is_file()) if folder.is_dir() else []
        starting = [k for k in known if k.startswith(ref)] if ref else []
        if len(starting) == 1:
            return self.run_files(starting[0]).best
        if len(starting) > 1:
            raise UsageError(
                f"'{ref}' is the start of {len(starting)} run ids with checkpoints in {folder}: "
                f"{', '.join(starting[:10])}{' …' if len(starting) > 10 else ''}; give more of it"
            )
        close = difflib.get_close_matches(ref, known, n=3, cutoff=0.4)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else (
                f"; runs with checkpoints: {', '.join(known[:5])}{' …' if len(known) > 5 else ''}"
                if known
                else "; no run there has a checkpoint (sweep with --save-checkpoints)"
            )
        )
        raise UsageError(f"no checkpoint for '{ref}': not a file and no run of that id in {folder}{hint}")


def apply_merge(plan: records.MergePlan) -> None:
    """Write the planned records into plan.into, each with its best checkpoint when the source kept one."""
    into = ResultsFolder(plan.into)
    for run_id, (record, folder) in plan.writes.items():
        source, target = ResultsFolder(folder).run_files(run_id), into.run_files(run_id)
        best = source.best_bytes() if source.best.is_file() else None
        if best is not None:
            target.save_best_bytes(best)
        else:  # a checkpoint left from the replaced record would not belong to this one
            target.drop_best()
        into.store(record, keep_checkpoints=False)  # its best.pt is placed above
    for run_id in plan.stale:
        (into.runs / f"{run_id}.json").unlink(missing_ok=True)
        into.run_files(run_id).drop_best()

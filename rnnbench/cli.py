"""The `rnnbench` command line: thin commands over the library.

    $ rnnbench sweep --preset smoke
    $ rnnbench results
    $ rnnbench data list

Each command parses, calls the library and prints. Bad input raises UsageError anywhere below;
the group catches it and prints one line, exit code 2. torch and pandas are imported inside the
commands so that `rnnbench --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from rnnbench import __version__
from rnnbench.errors import UsageError

# Piped output gets wide tables rather than rich's 80-column default for non-terminals.
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
stdout = Console(width=None if sys.stdout.isatty() else 160)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Group(TyperGroup):
    """Turns UsageError from any command, however deep, into one line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            stderr.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_USAGE) from None


app = typer.Typer(cls=_Group, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Benchmark character-level RNN, LSTM and GRU language models: loss and throughput "
                       "over cells, depths, sizes and devices.")
data_app = typer.Typer(no_args_is_help=True, help="List, download and build the corpora.")
results_app = typer.Typer(help="Show or export the stored runs (run with no subcommand to show them).")
app.add_typer(data_app, name="data")
app.add_typer(results_app, name="results")

RESULTS_DIR_HELP = "Folder of stored results (runs are files under RESULTS_DIR/runs)."
DATA_DIR_HELP = "Folder searched first for named corpora (then $RNNBENCH_DATA_DIR, then the cache)."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Benchmark character-level RNN, LSTM and GRU language models."""


def _split(text: Optional[str], cast=str, name: str = "") -> Optional[tuple]:
    """'a,b,c' -> (a, b, c), or None when the option was not given."""
    if text is None:
        return None
    try:
        values = tuple(cast(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--{name} takes a comma-separated list of {cast.__name__} values, got '{text}'") from None
    if not values:
        raise UsageError(f"--{name} is empty")
    return values


EXECUTORS = ("local", "ray")


@app.command()
def sweep(
    preset: Optional[str] = typer.Option(None, help="Preset name (benchmarks/presets/NAME.toml) or a .toml path; options given here override it."),
    dataset: Optional[str] = typer.Option(None, help="Corpus: warpeace, linux, synthetic, or a path to a text file. [default: warpeace]"),
    cells: Optional[str] = typer.Option(None, help="Comma-separated cell types from rnn, lstm, gru. [default: lstm,rnn,gru]"),
    layers: Optional[str] = typer.Option(None, help="Comma-separated layer counts. [default: 1,2,3]"),
    sizes: Optional[str] = typer.Option(None, help="Comma-separated sizes (see --size-mode). [default: 64,128,256,512]"),
    size_mode: Optional[str] = typer.Option(None, help="'params': a size is the parameter budget of a 1-layer LSTM that wide, as in the paper; 'hidden': a size is the hidden width. [default: params]"),
    devices: Optional[str] = typer.Option(None, help="Comma-separated devices (cpu, cuda, cuda:N, mps) or 'auto' for every device present. [default: auto]"),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated random seeds; each grid cell runs once per seed. [default: 0]"),
    epochs: Optional[int] = typer.Option(None, help="Budget: passes over the train split. [default: 50]"),
    max_steps: Optional[int] = typer.Option(None, help="Budget: training steps per run."),
    max_chars: Optional[int] = typer.Option(None, help="Budget: training characters per run (steps x batch x sequence length)."),
    time_budget: Optional[float] = typer.Option(None, help="Budget: seconds per run, evaluation included."),
    batch_size: Optional[int] = typer.Option(None, help="Parallel streams per step. [default: 100]"),
    seq_len: Optional[int] = typer.Option(None, help="Characters per stream per step (BPTT length). [default: 100]"),
    lr: Optional[float] = typer.Option(None, help="RMSProp learning rate. [default: 0.002]"),
    dropout: Optional[float] = typer.Option(None, help="Dropout between layers and before the output layer. [default: 0]"),
    grad_clip: Optional[float] = typer.Option(None, help="Clip the gradient norm at this value. [default: 5]"),
    eval_every: Optional[int] = typer.Option(None, help="Evaluate on the validation split every N steps (and at each epoch end). [default: 1000]"),
    patience: Optional[int] = typer.Option(None, help="Early stopping: evaluations without a better validation loss. [default: 5]"),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    results_dir: Path = typer.Option(Path("results"), help=RESULTS_DIR_HELP),
    force: bool = typer.Option(False, "--force", help="Run again runs that are already finished (their files are replaced)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the live progress display on stderr."),
    save_checkpoints: bool = typer.Option(True, "--save-checkpoints/--no-save-checkpoints", help="Keep each run's best weights and, while it runs, its latest state under RESULTS_DIR/checkpoints/RUN_ID/, so an interrupted run resumes exactly and `rnnbench sample` can use it."),
    shard: Optional[str] = typer.Option(None, help="Run only slice I of N of the grid (I/N, I from 1): every N-th run of the grid's fixed order, for spreading a sweep over the jobs of a batch scheduler. Merge their results with `rnnbench results merge`."),
    executor: str = typer.Option("local", help="Where runs train: 'local' (one at a time, in this process) or 'ray' (one Ray task per run; needs pip install 'rnnbench\\[ray]')."),
    ray_address: Optional[str] = typer.Option(None, help="With --executor ray: the cluster to use, 'auto' (the running one), 'local' (a new one on this machine) or HOST:PORT (its GCS address, port 6379 unless `ray start --port` said otherwise). [default: a running cluster if there is one, else a local one started for the sweep]"),
    ray_cpus_per_run: Optional[int] = typer.Option(None, help="With --executor ray: CPUs each CPU run asks Ray for, and the torch threads it trains with (a CUDA run asks for one GPU and one CPU). [default: 1]"),
    ray_max_retries: Optional[int] = typer.Option(None, help="With --executor ray: times Ray retries a run whose worker or node died; an error inside training is recorded, not retried. [default: 1]"),
) -> None:
    """Train every model of a grid and store one result file per run; finished runs are skipped."""
    from rnnbench.config import Grid, load_preset
    from rnnbench.sweep import LocalExecutor, Shard, run_sweep, summary_table

    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor '{executor}': choose from {', '.join(EXECUTORS)}")
    ray_options = {"address": ray_address, "cpus_per_run": ray_cpus_per_run, "max_retries": ray_max_retries}
    given = [name for name, value in ray_options.items() if value is not None]
    if executor != "ray" and given:
        raise UsageError(f"--ray-{given[0].replace('_', '-')} needs --executor ray")
    slice_ = Shard.parse(shard) if shard is not None else None

    base = load_preset(preset) if preset else Grid()
    grid = base.replace(
        dataset=dataset, cells=_split(cells, str, "cells"), layers=_split(layers, int, "layers"),
        sizes=_split(sizes, int, "sizes"), size_mode=size_mode, devices=_split(devices, str, "devices"),
        seeds=_split(seeds, int, "seeds"), epochs=epochs, max_steps=max_steps, max_chars=max_chars,
        time_budget_s=time_budget, batch_size=batch_size, seq_len=seq_len, lr=lr, dropout=dropout,
        grad_clip=grad_clip, eval_every_steps=eval_every, patience_evals=patience,
    )
    try:
        if executor == "ray":
            from rnnbench.ray_executor import RayExecutor

            runner = RayExecutor(**{name: ray_options[name] for name in given})
        else:
            runner = LocalExecutor()
        records = run_sweep(grid, str(results_dir), str(data_dir) if data_dir else None, force=force,
                            console=stderr, show_progress=progress, save_checkpoints=save_checkpoints,
                            executor=runner, shard=slice_)
    except KeyboardInterrupt:
        unfinished = ("runs in progress were cancelled and start over" if executor == "ray" else
                      "the run in progress was not stored (with checkpoints it continues from its last evaluation)")
        stderr.print(f"[yellow]interrupted:[/] finished runs are stored in {results_dir / 'runs'}; {unfinished}. "
                     "Run the same command again to continue.")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    dataset = records[0]["config"]["dataset"] if records else grid.dataset
    stdout.print(summary_table(records, title=f"sweep on {dataset}: {len(records)} run(s)"))


@app.command("compare-devices")
def compare_devices(
    devices: str = typer.Option("auto", help="Comma-separated devices (cpu, cuda, cuda:N, mps) or 'auto' for every device present."),
    cells: str = typer.Option("lstm,gru,rnn", help="Comma-separated cell types."),
    layers: str = typer.Option("1,2", help="Comma-separated layer counts."),
    sizes: str = typer.Option("128,512", help="Comma-separated sizes (see --size-mode)."),
    size_mode: str = typer.Option("params", help="'params' (a 1-layer LSTM's parameter budget, as in the paper) or 'hidden'."),
    batch_size: int = typer.Option(100, help="Sequences per batch for the training and inference workloads."),
    seq_len: int = typer.Option(100, help="Characters per sequence."),
    dtype: str = typer.Option("float32", help="float32, bfloat16 or float16 (reduced precision runs under torch.autocast)."),
    threads: Optional[str] = typer.Option(None, help="Comma-separated CPU thread counts to measure at. [default: torch's count]"),
    min_time: float = typer.Option(1.0, help="Seconds of timed blocks per figure (warm-up excluded)."),
    dataset: str = typer.Option("warpeace", help="Corpus whose vocabulary and text feed the models."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
    results_dir: Path = typer.Option(Path("results"), help=RESULTS_DIR_HELP),
    out: Optional[Path] = typer.Option(None, help="Also write the markdown report to this file."),
) -> None:
    """Time the same models on every device: training, inference and generation, against each device's measured limits."""
    import pandas as pd
    from rich.table import Table

    from rnnbench.compare import CompareSpec, run_compare
    from rnnbench.files import write_atomic
    from rnnbench.report import device_comparison_markdown, device_label
    from rnnbench.results import flatten

    spec = CompareSpec(
        dataset=dataset, devices=_split(devices, str, "devices"), cells=_split(cells, str, "cells"),
        layers=_split(layers, int, "layers"), sizes=_split(sizes, int, "sizes"), size_mode=size_mode,
        batch_size=batch_size, seq_len=seq_len, dtype=dtype, threads=_split(threads, int, "threads"),
        min_time_s=min_time,
    )
    table = Table(title="compare-devices")
    for name in ("device", "model", "workload", "median ms (IQR)", "chars/s", "GFLOP/s", "of peak", "status"):
        table.add_column(name, justify="left" if name in ("device", "model", "workload", "status") else "right")

    def on_row(record: dict) -> None:
        row = flatten(record)
        m = record["metrics"]
        model = f"{row['cell']} {row['num_layers']}x{row['size']}" if row.get("cell") else "-"
        rate = m.get("chars_per_s") or m.get("gflops") or m.get("gb_per_s")
        stderr.print(f"  {device_label(row)}  {model}  {row['workload']}: {record['status']}"
                     + (f", {m['time_ms_median']:.3f} ms" if "time_ms_median" in m else ""), highlight=False)
        table.add_row(device_label(row), model, row["workload"],
                      f"{m['time_ms_median']:.3f} ({m['time_ms_iqr']:.3f})" if "time_ms_median" in m else "-",
                      f"{m['chars_per_s']:,.0f}" if "chars_per_s" in m else "-",
                      f"{m.get('achieved_gflops', m.get('gflops', float('nan'))):,.1f}" if rate else "-",
                      f"{m['matmul_fraction']:.0%}" if "matmul_fraction" in m else "-",
                      record["status"] if record["status"] == "ok" else f"[red]{record['status']}[/] {escape(str(record['error']))}")

    if "cpu" in devices or "auto" in devices:
        from rnnbench.compare import cpu_dtype_support

        support = cpu_dtype_support()
        stderr.print("CPU dtypes: " + ", ".join(f"{name} {'yes' if why is None else 'no'}" for name, why in support.items()),
                     highlight=False)
        if support[dtype] is not None:
            stderr.print(f"[yellow]note:[/] the CPU does not run this model in {dtype} ({support[dtype]}); "
                         "its rows are stored as 'unsupported'", highlight=False, soft_wrap=True)
    records = run_compare(spec, str(results_dir), str(data_dir) if data_dir else None, on_row=on_row)
    stdout.print(table)
    markdown = device_comparison_markdown(pd.DataFrame([flatten(r) for r in records]))
    if out is not None:
        write_atomic(out, markdown.encode())
        stderr.print(f"wrote {out}")
    if not any(r["config"]["device"].startswith("cuda") for r in records):
        stderr.print("[yellow]note:[/] only the CPU was measured; no figure here is a GPU figure.")


@app.command()
def sample(
    run: str = typer.Argument(..., help="A run id (its RESULTS_DIR/checkpoints/RUN_ID/best.pt) or the path of a checkpoint file."),
    results_dir: Path = typer.Option(Path("results"), help=RESULTS_DIR_HELP),
    length: int = typer.Option(500, help="Characters (bytes) to generate after the priming text."),
    temperature: float = typer.Option(1.0, help="Divides the logits: below 1 sharpens the distribution, above 1 flattens it; must be above 0."),
    prime: str = typer.Option("", help="Text fed to the model first; generation continues it. [default: a newline]"),
    seed: int = typer.Option(0, help="Seed of the sampling generator: the same seed gives the same text."),
    device: str = typer.Option("cpu", help="Device to run the model on (a model trained on a GPU samples on a CPU)."),
    greedy: bool = typer.Option(False, "--greedy", help="Take the most likely character every time instead of sampling."),
) -> None:
    """Generate text from a trained run, one character at a time, each fed back as the next input."""
    import time

    from rnnbench import checkpoint
    from rnnbench.devices import resolve_devices
    from rnnbench.sample import find_checkpoint, generate, load_model

    path = find_checkpoint(run, results_dir)
    ckpt = checkpoint.load(path)
    model = load_model(ckpt, resolve_devices([device])[0])
    start = time.perf_counter()
    text = generate(model, ckpt["vocab"], length, temperature, prime.encode(), seed, greedy)
    seconds = time.perf_counter() - start
    sys.stdout.write(text.decode("utf-8", errors="replace") + "\n")
    config = ckpt["config"]
    stderr.print(f"{config['cell']} {config['num_layers']}x{config['size']} from {path} (step {ckpt['step']}, "
                 f"val {ckpt['val_loss_nats']:.3f} nats): {length} characters in {seconds:.2f} s "
                 f"({length / seconds:,.0f} chars/s)", highlight=False)


REPORT_FORMATS = ("markdown", "html", "csv")


@app.command()
def report(
    results_dir: Path = typer.Option(Path("results"), help=RESULTS_DIR_HELP),
    out: Optional[Path] = typer.Option(None, help="Report file. [default: RESULTS_DIR/REPORT.md or .html; csv goes to stdout]"),
    figures_dir: Optional[Path] = typer.Option(None, help="Where the markdown report's PNG figures go. [default: figures/ beside the report]"),
    format: str = typer.Option("markdown", "--format", help="markdown (with PNG figures), html (one self-contained page) or csv (the loss grids, long form)."),
) -> None:
    """Render the report from the stored rows only: the loss grids beside the paper's, throughput, devices, figures."""
    import os
    import tempfile

    from rnnbench import report as rep
    from rnnbench import results
    from rnnbench.files import write_atomic

    if format not in REPORT_FORMATS:
        raise UsageError(f"unknown report format '{format}': choose from {', '.join(REPORT_FORMATS)}")
    df = results.load(results_dir, warn=False)
    _report_problems(df.attrs["problems"])
    if df.empty:
        raise UsageError(f"no runs stored in {results.runs_dir(results_dir)}: run `rnnbench sweep` first; nothing written")
    if format == "csv":
        text = rep.render_csv(df)
        if out is None:
            sys.stdout.write(text)
        else:
            write_atomic(out, text.encode())
        return
    out = out or results_dir / ("REPORT.md" if format == "markdown" else "REPORT.html")
    figures_dir = figures_dir or out.parent / "figures"
    prefix = os.path.relpath(figures_dir, out.parent).replace(os.sep, "/") + "/"
    text, figures = rep.render_markdown(df, results.load_curves(results_dir), figures_prefix=prefix)
    if format == "markdown":
        figures_dir.mkdir(parents=True, exist_ok=True)
        for name, draw in figures.items():
            draw(str(figures_dir / name))
        write_atomic(out, text.encode())
        stderr.print(f"wrote {out} and {len(figures)} figures in {figures_dir}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        images = {}
        for name, draw in figures.items():
            draw(os.path.join(tmp, name))
            images[name] = Path(tmp, name).read_bytes()
    write_atomic(out, rep.render_html(text, images, prefix).encode())
    stderr.print(f"wrote {out} (figures inlined)")


@results_app.callback(invoke_without_command=True)
def results_show(
    ctx: typer.Context,
    results_dir: Path = typer.Option(Path("results"), help=RESULTS_DIR_HELP),
) -> None:
    """Print the stored runs as a table."""
    if ctx.invoked_subcommand is not None:
        return
    from rnnbench import results
    from rnnbench.sweep import summary_table

    records, problems = results.iter_records(results_dir)
    _report_problems(problems)
    sweeps = [r for r in records if r.get("kind", "sweep") == "sweep"]
    if not records:
        stderr.print(f"no runs stored in {results.runs_dir(results_dir)}; run `rnnbench sweep` first")
        return
    sweeps.sort(key=lambda r: (r["config"]["dataset"], r["config"]["size"], r["config"]["num_layers"],
                               r["config"]["cell"], r["config"]["device"], r["config"]["seed"]))
    stdout.print(summary_table(sweeps, title=f"{len(sweeps)} sweep runs in {results_dir}"))
    if len(sweeps) < len(records):
        stderr.print(f"and {len(records) - len(sweeps)} compare-devices rows: see `rnnbench report` "
                     "or `rnnbench results export`")


def _report_problems(problems: list[str]) -> None:
    for problem in problems:
        stderr.print(f"[yellow]warning:[/] skipped {escape(problem)}", highlight=False, soft_wrap=True)


@results_app.command("export")
def results_export(
    format: str = typer.Option("csv", "--format", help="csv or jsonl: one row per run with every column."),
    out: Optional[Path] = typer.Option(None, help="Write to this file (atomically) instead of stdout."),
    results_dir: Path = typer.Option(Path("results"), help=RESULTS_DIR_HELP),
) -> None:
    """Export the stored runs as one tidy table."""
    from rnnbench import results
    from rnnbench.files import write_atomic

    if format not in results.EXPORT_FORMATS:
        raise UsageError(f"unknown export format '{format}': choose from {', '.join(results.EXPORT_FORMATS)}")
    df = results.load(results_dir, warn=False)
    _report_problems(df.attrs["problems"])
    text = results.export(df, format)
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text.encode())
        stderr.print(f"wrote {len(df)} runs to {out}")


@results_app.command("merge")
def results_merge(
    sources: list[Path] = typer.Argument(..., help="Result folders to merge (each with a runs/ folder), e.g. one per machine or shard."),
    into: Path = typer.Option(..., help="Result folder to merge into; created if absent. Its runs are kept."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be merged, write nothing."),
) -> None:
    """Combine result folders by run id: copies runs (and their best checkpoints) not yet in INTO.

    The same record twice is one run; a finished run replaces failed attempts at it. Two different
    finished results for one run id are reported and neither is written: remove the one you do not
    want and merge again. Exit code 1 when there are such conflicts."""
    from rnnbench import results

    plan = results.plan_merge(sources, into)
    _report_problems(plan.problems)
    if not dry_run:
        results.apply_merge(plan)
    for line in plan.replaced:
        stderr.print(f"replaced: {escape(line)}", highlight=False, soft_wrap=True)
    for line in plan.conflicts:
        stderr.print(f"[red]conflict:[/] {escape(line)}", highlight=False, soft_wrap=True)
    verb = "would add" if dry_run else "added"
    stdout.print(f"{verb} {len(plan.writes)} run(s) to {into} from {len(sources)} folder(s); "
                 f"{plan.duplicates} duplicate(s) skipped, {len(plan.replaced)} failed attempt(s) replaced, "
                 f"{len(plan.conflicts)} conflict(s)", highlight=False, soft_wrap=True)
    if plan.conflicts:
        stderr.print(f"{len(plan.conflicts)} run id(s) have two different results and were left as they were "
                     f"in {into}: delete the unwanted SOURCE/runs/RUN_ID.json and merge again.", highlight=False,
                     soft_wrap=True)
        raise typer.Exit(1)


@data_app.command("list")
def data_list(data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP)) -> None:
    """Show each corpus: where it is, its size, vocabulary and split sizes."""
    from rich.table import Table

    from rnnbench import data

    table = Table(title="corpora (bytes; splits are contiguous 80/10/10)")
    for name in ("name", "present", "bytes", "vocab", "train", "val", "test", "description"):
        table.add_column(name, justify="right" if name in ("bytes", "vocab", "train", "val", "test") else "left")
    entries = [(spec.name, spec) for spec in data.REGISTRY.values()] + [(data.SYNTHETIC_NAME, None)]
    for name, spec in entries:
        path = data.find(spec, data_dir) if spec else None
        if spec is None or path is not None:
            try:
                corpus = data.load_corpus(name, data_dir, show_progress=False)
            except UsageError as exc:
                table.add_row(name, f"[red]{exc}[/]", *["-"] * 5, spec.description)
                continue
            where = corpus.source
            sizes = [f"{n:,}" for n in corpus.split_sizes]
            table.add_row(name, where, f"{corpus.n_bytes:,}", str(corpus.vocab_size), *sizes,
                          spec.description if spec else "generated; long-range structure (see rnnbench.synthetic)")
        else:
            how = "downloads on first use" if spec.url else spec.how_to_get
            table.add_row(name, f"[yellow]no[/]: {how}", f"{spec.n_bytes:,}", "-", "-", "-", "-", spec.description)
    stdout.print(table)


@data_app.command("fetch")
def data_fetch(
    name: str = typer.Argument(..., help="A registered corpus with a download address (warpeace)."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Download a corpus into the cache now (sweeps also do it on first use), checking its sha256."""
    from rnnbench import data

    if name not in data.REGISTRY:
        raise UsageError(f"unknown corpus '{name}': choose from {', '.join(data.REGISTRY)}")
    path = data.fetch(data.REGISTRY[name], data_dir)
    data.load_corpus(name, data_dir)  # verifies size and checksum of a file found on disk
    stdout.print(f"{name}: {path}")


@data_app.command("build-linux")
def data_build_linux(
    tarball: Path = typer.Argument(..., help="Debian's usr/src/linux-source-6.1.tar.xz from linux-source-6.1 6.1.192-2."),
    out: Optional[Path] = typer.Option(None, help="Where to write linux.txt. [default: the cache folder]"),
) -> None:
    """Rebuild the Linux corpus from kernel source by its documented recipe, and verify its sha256."""
    from rnnbench import data
    from rnnbench.files import write_atomic

    if not tarball.is_file():
        raise UsageError(f"{tarball} is not a file: give the path of linux-source-6.1.tar.xz")
    spec = data.REGISTRY["linux"]
    with stderr.status(f"reading kernel/*.[ch] from {tarball}"):
        text = data.build_linux_text(tarball, spec.n_bytes)
    if len(text) != spec.n_bytes or data.sha256_of(text) != spec.sha256:
        raise UsageError(f"the text built from {tarball} ({len(text):,} bytes, sha256 {data.sha256_of(text)[:12]}…) "
                         f"is not the pinned corpus (sha256 {spec.sha256[:12]}…): use linux-source-6.1 6.1.192-2; nothing written")
    path = out or data.cache_dir() / spec.filename
    write_atomic(path, text)
    stdout.print(f"linux: {path} ({len(text):,} bytes, sha256 verified)")


@app.command("devices")
def devices_list() -> None:
    """List the devices torch can use on this machine."""
    from rnnbench.devices import available_devices, describe

    for device in available_devices():
        env = describe(device)
        name = env["gpu_name"] or f"{env['cpu_model']} ({env['cpu_cores_logical']} logical cores, {env['torch_num_threads']} torch threads)"
        stdout.print(f"{device}: {name}")
    if "cuda" not in " ".join(available_devices()):
        stdout.print("no CUDA device: only the CPU can be measured here")


def main() -> None:
    app()

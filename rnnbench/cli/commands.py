"""The `rnnbench` command line: thin commands over the library.

    $ rnnbench sweep --preset smoke
    $ rnnbench results
    $ rnnbench data list

Each command parses, calls the library and hands what it gets back (events, records, tables) to
rnnbench.cli.terminal, which draws them. Bad input raises UsageError anywhere below; the group catches
it and prints one line, exit code 2. The options of `sweep` and `compare-devices` that set up runs
are made from the settings declared in rnnbench.config, so an option is named as its preset key.
torch and pandas are imported inside the commands so that `rnnbench --help` stays fast.
"""

from __future__ import annotations

import functools
import inspect
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from rnnbench import __version__
from rnnbench.cli import terminal
from rnnbench.config import COMPARE_SETTINGS, GRID_SETTINGS, KERNEL_SETTINGS, Setting
from rnnbench.errors import StopRequested, UsageError
from rnnbench.files import check_writable, default_results_dir
from rnnbench.measure.ngram import ORDERS as NGRAM_ORDERS

EXIT_USAGE = 2
EXIT_STOPPED = 75  # EX_TEMPFAIL: stopped on request (--stop-after, SIGTERM); the same command resumes
EXIT_INTERRUPTED = 130


class OneLineErrors(TyperGroup):
    """Turns UsageError from any command, however deep, into one line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            terminal.error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except typer.BadParameter as exc:  # a value Click checks itself (a declared range, a type): one line too
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            terminal.error(exc.format_message() + where)
            raise typer.Exit(EXIT_USAGE) from None


# Plain Click help, not rich's panels: it wraps to any terminal (rich's cut option names at 80
# columns) and takes text as written (rich markup ate "[tensorboard]" from an install hint).
HELP = {"rich_markup_mode": None}
app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Benchmark character-level RNN, LSTM and GRU language models: loss and throughput "
    "over cells, depths, sizes and devices.",
    **HELP,
)
data_app = typer.Typer(no_args_is_help=True, help="List, download and build the corpora.", **HELP)
results_app = typer.Typer(help="Show or export the stored runs (run with no subcommand to show them).", **HELP)
baseline_app = typer.Typer(
    no_args_is_help=True, help="Baselines the RNNs are measured against, stored as rows.", **HELP
)
app.add_typer(data_app, name="data")
app.add_typer(results_app, name="results")
app.add_typer(baseline_app, name="baseline")

RESULTS_DIR_HELP = (
    "Folder of stored results (runs are files under RESULTS_DIR/runs). Default: $RNNBENCH_RESULTS_DIR, "
    "else the user data folder (~/.local/share/rnnbench/results on Linux). A checkout's results/ "
    "holds the published rows: name it to add to them."
)
DATA_DIR_HELP = "Folder searched first for named corpora (then $RNNBENCH_DATA_DIR, then the cache)."


def _results_dir(value: Path | None) -> Path:
    return value if value is not None else default_results_dir()


RESULTS_DIR_OPTION = typer.Option(
    None, callback=_results_dir, help=RESULTS_DIR_HELP, show_default=False, metavar="FOLDER"
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnnbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Benchmark character-level RNN, LSTM and GRU language models."""


# --- options made from declared settings --------------------------------------------------------------


def _comma_list(text: str, cast=str, name: str = "") -> tuple:
    """'a,b,c' -> (a, b, c). An empty item ('lstm,,gru', a trailing comma) is an error: it is a
    typo more often than not, and dropping it would start another grid than the one meant."""
    items = [v.strip() for v in text.split(",")]
    if not any(items):
        raise UsageError(f"--{name} is empty")
    if not all(items):
        raise UsageError(f"--{name} has an empty item in '{text}': give values separated by single commas")
    try:
        return tuple(cast(v) for v in items)
    except ValueError:
        raise UsageError(f"--{name} takes a comma-separated list of {cast.__name__} values, got '{text}'") from None


def _option(s: Setting) -> inspect.Parameter:
    """The command-line option of a setting, with the setting's default (shown by --help)."""
    help_text = s.help
    if s.is_list:  # lists are typed as a,b,c
        help_text = "Comma-separated " + (
            help_text[0].lower() + help_text[1:] if help_text[1:2].islower() else help_text
        )
    default = s.default_text() if s.is_list and s.default is not None else s.default
    names = [f"{s.option}/--no-{s.option[2:]}"] if s.type is bool else [s.option, *s.aliases]
    one = (
        "|".join(s.choices)
        if s.choices
        else s.unit.upper()
        if s.unit
        else {int: "INT", float: "NUMBER"}.get(s.type, "TEXT")
    )
    option = typer.Option(
        default,
        *names,
        help=help_text,
        show_default=s.shown_default or default is not None,
        metavar=None if s.type is bool else f"{one},..." if s.is_list else one,
    )
    annotation = Optional[str] if s.is_list else Optional[s.type]
    return inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def with_settings(declared: dict[str, Setting]):
    """Give a command one option per declared setting, in the place of its `settings` parameter.
    The command gets {name: value} of the options given on the command line only, lists parsed,
    so that a preset's value stands where an option was left at its default."""

    def decorate(command):
        own = list(inspect.signature(command).parameters.values())
        at = [p.name for p in own].index("settings")
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params[at : at + 1] = [_option(s) for s in declared.values()]
        params.append(inspect.Parameter("_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

        @functools.wraps(command)
        def wrapper(_ctx: typer.Context, **kwargs):
            given = {name: kwargs.pop(name) for name in declared}
            # By the source's name: Typer may bring its own copy of Click and of its enums.
            given = {
                name: value
                for name, value in given.items()
                if _ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")
            }
            settings = {
                name: _comma_list(value, declared[name].type, declared[name].option[2:])
                if declared[name].is_list
                else value
                for name, value in given.items()
            }
            return command(settings=settings, **kwargs)

        wrapper.__signature__ = inspect.Signature(params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def _raise_interrupt(*_) -> None:
    raise KeyboardInterrupt


# --- commands -----------------------------------------------------------------------------------------


@app.command()
@with_settings(GRID_SETTINGS)
def sweep(
    preset: Optional[str] = typer.Option(
        None,
        metavar="NAME|FILE",
        help="Preset name (benchmarks/presets/NAME.toml) or a .toml path; options given here override it.",
    ),
    settings: dict = None,
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP, metavar="FOLDER"),
    results_dir: Optional[Path] = RESULTS_DIR_OPTION,
    force: bool = typer.Option(
        False, "--force", help="Run again runs that are already finished (their files are replaced)."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the live progress display on stderr."),
    plan_only: bool = typer.Option(
        False,
        "--plan",
        help="Print the plan and train nothing: each run to train with its estimated seconds (from the stored "
        "rows of the same hardware and model, else a short probe of the model), what is stored already, and "
        "the expected wall time with --jobs.",
    ),
    save_checkpoints: bool = typer.Option(
        True,
        "--save-checkpoints/--no-save-checkpoints",
        help="Keep each run's best weights and, while it runs, its latest state under "
        "RESULTS_DIR/checkpoints/RUN_ID/, so an interrupted run resumes exactly and `rnnbench sample` can use it.",
    ),
    shard: Optional[str] = typer.Option(
        None,
        metavar="I/N",
        help="Run only slice I of N of the grid (I/N, I from 1): every N-th run of the grid's fixed order, for "
        "spreading a sweep over the jobs of a batch scheduler. Merge their results with `rnnbench results merge`.",
    ),
    executor: str = typer.Option(
        "local",
        metavar="local|ray",
        help="Where runs train: 'local' (one at a time, in this process) or 'ray' (one Ray task per run; needs pip "
        "install 'rnnbench[ray]').",
    ),
    ray_address: Optional[str] = typer.Option(
        None,
        show_default="a running cluster if there is one, else a local one started for the sweep",
        help="With --executor ray: the cluster to use, 'auto' (the running one), 'local' (a new one on this machine) "
        "or HOST:PORT (its GCS address, port 6379 unless `ray start --port` said otherwise).",
    ),
    ray_cpus_per_run: Optional[int] = typer.Option(
        None,
        min=1,
        show_default="1",
        help="With --executor ray: CPUs each CPU run asks Ray for, and the torch threads it trains with (a CUDA run "
        "asks for one GPU and one CPU).",
    ),
    ray_max_retries: Optional[int] = typer.Option(
        None,
        min=0,
        show_default="1",
        help="With --executor ray: times Ray retries a run whose worker or node died; an error inside training is "
        "recorded, not retried.",
    ),
    ray_gpus_per_run: Optional[float] = typer.Option(
        None,
        min=0.01,
        max=1,
        show_default="1",
        help="With --executor ray: the fraction of a GPU each CUDA run asks for; 0.25 lets four runs share one GPU.",
    ),
) -> None:
    """Train every model of a grid and store one result file per run; finished runs are skipped."""
    from rnnbench.config import Grid, load_preset
    from rnnbench.sweep import Shard, Stopper, run_sweep, sweep_executor

    slice_ = Shard.parse(shard) if shard is not None else None
    grid = (load_preset(preset) if preset else Grid()).replace(**settings)
    ray_options = {
        "address": ray_address,
        "cpus_per_run": ray_cpus_per_run,
        "max_retries": ray_max_retries,
        "gpus_per_run": ray_gpus_per_run,
    }
    runner = sweep_executor(executor, grid.execution, ray_options)
    data = str(data_dir) if data_dir else None
    if plan_only:
        from rnnbench.sweep import crowded_cores_notice, plan_sweep

        with terminal.status("planning: estimating each run (a short probe of each model shape without stored rows)"):
            sweep_plan = plan_sweep(grid, results_dir, data, force, runner if executor == "ray" else None, slice_)
        terminal.show(terminal.plan_table(sweep_plan, grid.execution.jobs))
        crowded = crowded_cores_notice(grid, runner)  # the wall time above assumes the runs fit the cores
        for notice in [crowded, terminal.busy_probes_notice(sweep_plan)]:
            if notice:
                terminal.note(notice)
        return
    stopper = Stopper(grid.execution.stop_after_s)
    # What a batch scheduler sends before its time limit: stop as --stop-after does, at once.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt if executor == "ray" else lambda *_: stopper.ask())
    try:
        with terminal.SweepDisplay(enabled=progress) as display:
            records = run_sweep(
                grid,
                str(results_dir),
                data,
                force=force,
                on_event=display.handle,
                save_checkpoints=save_checkpoints,
                executor=runner,
                shard=slice_,
                stopper=stopper,
            )
    except StopRequested:
        terminal.stopped(str(results_dir / "runs"), save_checkpoints)
        raise typer.Exit(EXIT_STOPPED) from None
    except KeyboardInterrupt:
        terminal.interrupted(
            str(results_dir / "runs"),
            "runs in progress were cancelled and start over"
            if executor == "ray"
            else "runs in progress were not stored (with checkpoints they continue from their last evaluation)"
            if grid.execution.jobs > 1
            else "the run in progress was not stored (with checkpoints it continues from its last evaluation)",
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    dataset = records[0].config["dataset"] if records else grid.dataset
    terminal.show(terminal.runs_table(records, title=f"sweep on {dataset}: {len(records)} run(s)"))


@app.command("compare-devices")
@with_settings(COMPARE_SETTINGS)
def compare_devices(
    settings: dict = None,
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP, metavar="FOLDER"),
    results_dir: Optional[Path] = RESULTS_DIR_OPTION,
    out: Optional[Path] = typer.Option(None, help="Also write the markdown report to this file."),
) -> None:
    """Time the same models on every device: training, inference and generation, against each device's measured
    limits."""
    from rnnbench.files import write_atomic
    from rnnbench.measure.device_speed import CompareSpec, run_compare
    from rnnbench.report import device_comparison_markdown
    from rnnbench.results import frame

    spec = CompareSpec(**settings)
    display = terminal.CompareDisplay()
    check_writable(results_dir, "results folder")
    if out is not None:
        check_writable(out.parent, "output folder")
    records = run_compare(spec, str(results_dir), str(data_dir) if data_dir else None, on_event=display.handle)
    terminal.show(display.table)
    if out is not None:
        write_atomic(out, device_comparison_markdown(frame(records)).encode())
        terminal.info(f"wrote {out}")
    if not any(r.config["device"].startswith("cuda") for r in records):
        terminal.note("only the CPU was measured; no figure here is a GPU figure.")


@app.command()
@with_settings(KERNEL_SETTINGS)
def kernels(
    settings: dict = None,
    results_dir: Optional[Path] = RESULTS_DIR_OPTION,
    plan_only: bool = typer.Option(
        False, "--plan", help="Print each row with its expected seconds and the sum, and measure nothing."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar on stderr."),
) -> None:
    """Time one recurrent layer at DeepBench's training shapes (or the paper's), forward and forward+backward, to
    set beside the processors DeepBench published (`rnnbench report`)."""
    from rnnbench.config import KernelSpec
    from rnnbench.measure.kernels import plan_kernels, run_kernels

    spec = KernelSpec(**settings)
    check_writable(results_dir, "results folder")
    if plan_only:
        with terminal.status("planning: the device's matmul rate and one small layer per cell"):
            planned = plan_kernels(spec, results_dir)
        terminal.show(terminal.kernel_plan_table(planned))
        return
    try:
        with terminal.KernelDisplay(enabled=progress) as display:
            run_kernels(spec, results_dir, display.handle)
    except KeyboardInterrupt:
        terminal.interrupted(str(results_dir / "runs"), "the row in progress was not stored")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    terminal.show(display.table)


@app.command()
def sample(
    run: str = typer.Argument(
        ..., help="A run id (its RESULTS_DIR/checkpoints/RUN_ID/best.pt) or the path of a checkpoint file."
    ),
    results_dir: Optional[Path] = RESULTS_DIR_OPTION,
    length: int = typer.Option(500, min=1, help="Characters (bytes) to generate after the priming text."),
    temperature: float = typer.Option(
        1.0,
        min=0,  # and not 0 itself: stream() says so, with the flag that does what 0 would mean
        help="Divides the logits: below 1 sharpens the distribution, above 1 flattens it; must be above 0.",
    ),
    prime: str = typer.Option(
        "", show_default="a newline", help="Text fed to the model first; generation continues it."
    ),
    seed: int = typer.Option(0, min=0, help="Seed of the sampling generator: the same seed gives the same text."),
    device: str = typer.Option("cpu", help="Device to run the model on (a model trained on a GPU samples on a CPU)."),
    greedy: bool = typer.Option(
        False, "--greedy", help="Take the most likely character every time instead of sampling."
    ),
) -> None:
    """Generate text from a trained run, one character at a time, each fed back as the next input."""
    import codecs
    import time

    from rnnbench.core import checkpoint
    from rnnbench.core.devices import resolve_devices
    from rnnbench.measure.sample import load_model, stream
    from rnnbench.results import ResultsFolder

    path = ResultsFolder(results_dir).find_checkpoint(run)
    ckpt = checkpoint.load(path)
    model = load_model(ckpt, resolve_devices([device])[0])
    start = time.perf_counter()
    # Written as it is made: a long sample shows at once, and Ctrl-C keeps what was written.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in stream(model, ckpt["vocab"], length, temperature, prime.encode(), seed, greedy):
        sys.stdout.write(decoder.decode(chunk))
        sys.stdout.flush()
    seconds = time.perf_counter() - start
    sys.stdout.write(decoder.decode(b"", final=True) + "\n")
    config = ckpt["config"]
    terminal.info(
        f"{config['cell']} {config['num_layers']}x{config['size']} from {path} (step {ckpt['step']}, "
        f"val {ckpt['val_loss_nats']:.3f} nats): {length} characters in {seconds:.2f} s "
        f"({length / seconds:,.0f} chars/s)"
    )


REPORT_FORMATS = ("markdown", "html", "csv")


@app.command()
def report(
    results_dir: Optional[Path] = RESULTS_DIR_OPTION,
    out: Optional[Path] = typer.Option(
        None, show_default="RESULTS_DIR/REPORT.md or .html; csv goes to stdout", help="Report file."
    ),
    figures_dir: Optional[Path] = typer.Option(
        None, show_default="figures/ beside the report", help="Where the markdown report's PNG figures go."
    ),
    format: str = typer.Option(
        "markdown",
        "--format",
        help="markdown (with PNG figures), html (one self-contained page) or csv (the loss grids, long form).",
    ),
    target_loss: list[str] = typer.Option(
        [],
        "--target-loss",
        metavar="CORPUS=NATS",
        help="Target validation loss for the time to target, per corpus; repeatable. Default: the paper's 20-gram "
        "baseline (warpeace=1.195, linux=0.889).",
    ),
    baseline_hardware: Optional[str] = typer.Option(
        None,
        "--baseline-hardware",
        metavar="TEXT",
        help="The hardware the cross-hardware speedups are against: text that is part of one hardware's name (e.g. "
        "H200, '2 threads').",
    ),
) -> None:
    """Render the report from the stored rows only: the loss grids beside the paper's, throughput, time to a target
    loss, hardware, devices, figures."""
    from rnnbench import report as rep
    from rnnbench import results
    from rnnbench.files import write_atomic

    if format not in REPORT_FORMATS:
        raise UsageError(f"unknown report format '{format}': choose from {', '.join(REPORT_FORMATS)}")
    options = {"targets": rep.parse_targets(target_loss), "baseline_hardware": baseline_hardware}
    df = results.load(results_dir, warn=False)
    terminal.skipped(df.attrs["problems"])
    if df.empty:
        raise UsageError(
            f"no runs stored in {results.runs_dir(results_dir)}: run `rnnbench sweep` first; nothing written"
        )
    if format == "csv":
        text = rep.render_csv(df)
        if out is None:
            sys.stdout.write(text)
        else:
            write_atomic(out, text.encode())
        return
    curves = results.load_curves(results_dir)
    if format == "markdown":
        out = out or results_dir / "REPORT.md"
        check_writable(out.parent, "report's folder")
        check_writable(figures_dir or out.parent / "figures", "figures folder")
        figures_dir, n_figures = rep.write_markdown(df, curves, out, figures_dir, **options)
        terminal.info(f"wrote {out} and {n_figures} figures in {figures_dir}")
    else:
        out = out or results_dir / "REPORT.html"
        check_writable(out.parent, "report's folder")
        rep.write_html(df, curves, out, **options)
        terminal.info(f"wrote {out} (figures inlined)")


LAYOUT_SETTINGS = {
    name: GRID_SETTINGS[name]
    for name in ("dataset", "split", "train_fraction", "val_fraction", "batch_size", "seq_len")
}


@baseline_app.command("ngram")
@with_settings(LAYOUT_SETTINGS)
def baseline_ngram(
    settings,
    order: int = typer.Option(
        20,
        min=NGRAM_ORDERS.low,
        max=NGRAM_ORDERS.high,
        help="The highest n: every order from 1 to n is counted and scored in one pass "
        "(an order-n model predicts each byte from the n - 1 bytes before it; the "
        "paper's baseline is 20).",
    ),
    smoothing: str = typer.Option(
        "kn,mkn",
        help="Comma-separated smoothings: kn (one discount per order), mkn "
        "(modified Kneser-Ney, three discounts per order).",
    ),
    preset: Optional[str] = typer.Option(
        None,
        help="Take the corpus and the data layout from this sweep preset "
        "(e.g. paper), so that the n-grams see the RNNs' splits; "
        "the options above override it.",
    ),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP, metavar="FOLDER"),
    results_dir: Optional[Path] = RESULTS_DIR_OPTION,
) -> None:
    """Character n-gram models (Kneser-Ney) of every order up to --order on the same bytes, layout and streams as
    the RNNs: validation and test loss of each order, stored as rows."""
    from rnnbench import results
    from rnnbench.config import Grid, load_preset
    from rnnbench.core.data import Layout, load_corpus
    from rnnbench.measure.ngram import run_baseline

    grid = (load_preset(preset) if preset else Grid()).replace(**settings)
    layout = Layout.of(grid.train)
    smoothings = _comma_list(smoothing, str, "smoothing")
    check_writable(results_dir, "results folder")
    corpus = load_corpus(grid.dataset, data_dir, terminal.DownloadBar().handle)
    train_bytes = layout.sizes(corpus.n_bytes)[0]
    with terminal.status(
        f"counting 1- to {order}-grams of '{corpus.name}' ({train_bytes:,} training bytes, {layout.split} layout)"
    ):
        records = run_baseline(corpus, layout, order, smoothings)
    folder = results.ResultsFolder(results_dir)
    for record in records:
        folder.store(record, keep_checkpoints=False)  # a row of the same order and smoothing is replaced
    terminal.show(
        terminal.ngram_table(
            records, title=f"n-gram baselines on '{corpus.name}' ({layout.split} layout), nats per character"
        )
    )
    m = records[0].metrics
    terminal.info(
        f"{len(records)} rows stored in {results.runs_dir(results_dir)}; one pass of {m['seconds']:.1f} s, "
        f"peak RSS {m['peak_rss_mb']:,.0f} MB",
        terminal.stdout,
    )


@results_app.callback(invoke_without_command=True)
def results_show(
    ctx: typer.Context,
    results_dir: Optional[Path] = RESULTS_DIR_OPTION,
) -> None:
    """Print the stored runs as a table."""
    if ctx.invoked_subcommand is not None:
        return
    from rnnbench import results

    records, problems = results.iter_records(results_dir)
    terminal.skipped(problems)
    sweeps = [r for r in records if r.kind == "sweep"]
    if not records:
        terminal.info(f"no runs stored in {results.runs_dir(results_dir)}; run `rnnbench sweep` first")
        return
    sweeps.sort(
        key=lambda r: (
            r.config["dataset"],
            r.config["size"],
            r.config["num_layers"],
            r.config["cell"],
            r.config["device"],
            r.config["seed"],
        )
    )
    terminal.show(terminal.runs_table(sweeps, title=f"{len(sweeps)} sweep runs in {results_dir}"))
    if len(sweeps) < len(records):
        kinds = sorted({r.kind for r in records} - {"sweep"})
        terminal.info(
            f"and {len(records) - len(sweeps)} {', '.join(k.replace('compare', 'compare-devices') for k in kinds)} "
            "rows: see `rnnbench report` or `rnnbench results export`"
        )


@results_app.command("export")
def results_export(
    format: str = typer.Option("csv", "--format", help="csv or jsonl: one row per run with every column."),
    out: Optional[Path] = typer.Option(None, help="Write to this file (atomically) instead of stdout."),
    results_dir: Optional[Path] = RESULTS_DIR_OPTION,
) -> None:
    """Export the stored runs as one tidy table."""
    from rnnbench import results
    from rnnbench.files import write_atomic

    if format not in results.EXPORT_FORMATS:
        raise UsageError(f"unknown export format '{format}': choose from {', '.join(results.EXPORT_FORMATS)}")
    if out is not None:
        check_writable(out.parent, "output folder")
    df = results.load(results_dir, warn=False)
    terminal.skipped(df.attrs["problems"])
    text = results.export(df, format)
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomic(out, text.encode())
        terminal.info(f"wrote {len(df)} runs to {out}")


@results_app.command("merge")
def results_merge(
    sources: list[Path] = typer.Argument(
        ..., help="Result folders to merge (each with a runs/ folder), e.g. one per machine or shard."
    ),
    into: Path = typer.Option(..., help="Result folder to merge into; created if absent. Its runs are kept."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be merged, write nothing."),
) -> None:
    """Combine result folders run by run: copies runs (and their best checkpoints) not yet in INTO.

    A run is its configuration and the hardware that ran it: two machines' runs of one grid are all
    kept. The same record twice is one run; a finished run replaces failed attempts at it. Two
    different finished results for one run on the same hardware are reported and neither is
    written: remove the one you do not want and merge again. Exit code 1 when there are such conflicts."""
    from rnnbench import results

    plan = results.plan_merge(sources, into)
    terminal.skipped(plan.problems)
    if not dry_run:
        check_writable(into, "folder to merge into")
        results.apply_merge(plan)
    verb = "would add" if dry_run else "added"
    terminal.merge_outcome(
        plan.replaced,
        plan.conflicts,
        f"{verb} {len(plan.writes)} run(s) to {into} from {len(sources)} folder(s); "
        f"{plan.duplicates} duplicate(s) skipped, {len(plan.replaced)} failed attempt(s) replaced, "
        f"{len(plan.conflicts)} conflict(s)",
        str(into),
    )
    if plan.conflicts:
        raise typer.Exit(1)


@results_app.command("compare")
def results_compare(
    base: Path = typer.Argument(..., help="Result folder of the baseline runs."),
    new: Path = typer.Argument(..., help="Result folder of the runs to compare with them (may be BASE, with filters)."),
    base_filter: list[str] = typer.Option(
        [],
        "--base-filter",
        help="Keep BASE runs whose COLUMN=VALUE, or COLUMN~TEXT (contains); repeatable. E.g. device=cpu, hardware~'2 "
        "threads'.",
    ),
    new_filter: list[str] = typer.Option([], "--new-filter", help="The same for NEW, e.g. hardware~H200."),
    fail_if_slower: Optional[str] = typer.Option(
        None,
        "--fail-if-slower",
        metavar="PERCENT",
        help="Exit 1 if a run is flagged slower by more than this (e.g. 5%): for CI.",
    ),
    min_change: float = typer.Option(
        0.02,
        "--min-change",
        min=0,
        metavar="FRACTION",
        help="Medians closer than this are 'same' even when the quartiles do not overlap.",
    ),
    out: Optional[Path] = typer.Option(None, help="Also write the comparison as markdown to this file."),
) -> None:
    """For every run in both BASE and NEW: the change in test loss and the speedup of training, with noise.

    Runs match on corpus, cell, depth, size, seed and every training setting (not on device or hardware).
    Faster or slower only where the step-time interquartile ranges do not overlap; else same."""
    from rnnbench import results
    from rnnbench.files import write_atomic
    from rnnbench.report import run_pairs

    limit = run_pairs.parse_percent(fail_if_slower) if fail_if_slower is not None else None
    sides = []
    for folder in (base, new):
        if not results.runs_dir(folder).is_dir():
            raise UsageError(f"{folder} holds no results (no folder {results.runs_dir(folder)})")
        df = results.load(folder, warn=False)
        terminal.skipped(df.attrs["problems"])
        sides.append(df)
    table = run_pairs.compare_runs(
        *sides,
        [run_pairs.Filter.parse(f) for f in base_filter],
        [run_pairs.Filter.parse(f) for f in new_filter],
        min_change,
    )
    terminal.show(terminal.run_pairs_table(table, f"{base} (BASE) against {new} (NEW)"))
    terminal.info(run_pairs.summary(table), terminal.stdout)
    terminal.info(run_pairs.method_text(min_change))
    if out is not None:
        write_atomic(out, run_pairs.markdown(table, run_pairs.method_text(min_change)).encode())
        terminal.info(f"wrote {out}")
    if limit is not None:
        slow = run_pairs.slowdowns(table, limit)
        if not slow.empty:
            terminal.error(
                f"{len(slow)} run(s) slower by more than {limit:.0%}: "
                + ", ".join(f"{r.cell} {r.num_layers}x{r.size} x{r.speedup:.2f}" for r in slow.itertuples())
            )
            raise typer.Exit(1)


@data_app.command("list")
@with_settings({name: s for name, s in LAYOUT_SETTINGS.items() if name != "dataset"})
def data_list(
    settings,
    preset: Optional[str] = typer.Option(None, help="Show the split sizes of this sweep preset's layout (e.g. paper)."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP, metavar="FOLDER"),
) -> None:
    """Show each corpus: where it is, its size, vocabulary and split sizes under a layout (contiguous 80/10/10 unless
    told otherwise)."""
    from rnnbench.config import Grid, load_preset
    from rnnbench.core import data

    layout = data.Layout.of((load_preset(preset) if preset else Grid()).replace(**settings).train)
    terminal.show(terminal.corpora_table(data.list_corpora(data_dir, layout), layout))


@data_app.command("fetch")
def data_fetch(
    name: str = typer.Argument(..., help="A registered corpus with a download address (warpeace)."),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP, metavar="FOLDER"),
) -> None:
    """Download a corpus into the cache now (sweeps also do it on first use), checking its sha256."""
    from rnnbench.core import data

    if name not in data.REGISTRY:
        raise UsageError(f"unknown corpus '{name}': choose from {', '.join(data.REGISTRY)}")
    path = data.fetch(data.REGISTRY[name], data_dir, terminal.DownloadBar().handle)
    data.load_corpus(name, data_dir)  # verifies size and checksum of a file found on disk
    terminal.info(f"{name}: {path}", terminal.stdout)


@data_app.command("build-linux")
def data_build_linux(
    tarball: Path = typer.Argument(
        ..., help="Debian's usr/src/linux-source-6.1.tar.xz from linux-source-6.1 6.1.192-2."
    ),
    out: Optional[Path] = typer.Option(None, show_default="the cache folder", help="Where to write linux.txt."),
) -> None:
    """Rebuild the Linux corpus from kernel source by its documented recipe, and verify its sha256."""
    from rnnbench.core import data
    from rnnbench.files import write_atomic

    if not tarball.is_file():
        raise UsageError(f"{tarball} is not a file: give the path of linux-source-6.1.tar.xz")
    spec = data.REGISTRY["linux"]
    with terminal.status(f"reading kernel/*.[ch] from {tarball}"):
        text = data.build_linux_text(tarball, spec.n_bytes)
    if len(text) != spec.n_bytes or data.sha256_of(text) != spec.sha256:
        raise UsageError(
            f"the text built from {tarball} ({len(text):,} bytes, sha256 {data.sha256_of(text)[:12]}…) "
            f"is not the pinned corpus (sha256 {spec.sha256[:12]}…): use linux-source-6.1 6.1.192-2; nothing written"
        )
    path = out or data.cache_dir() / spec.filename
    write_atomic(path, text)
    terminal.info(f"linux: {path} ({len(text):,} bytes, sha256 verified)", terminal.stdout)


@app.command("devices")
def devices_list() -> None:
    """List the devices torch can use on this machine."""
    from rnnbench.core.devices import available_devices, environment

    for device in available_devices():
        env = environment(device)
        name = (
            env["gpu_name"]
            or f"{env['cpu_model']} ({env['cpu_cores_logical']} logical cores, "
            f"{env['torch_num_threads']} torch threads)"
        )
        terminal.info(f"{device}: {name}", terminal.stdout)
    if "cuda" not in " ".join(available_devices()):
        terminal.info("no CUDA device: only the CPU can be measured here", terminal.stdout)


def main() -> None:
    app()

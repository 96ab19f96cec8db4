"""The seams between the parts: settings declared once, one terminal layer fed by events, a
training step that can be wrapped."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from conftest import tiny_grid, without_clock
from rich.console import Console
from typer.testing import CliRunner

from rnnbench import results
from rnnbench.cli import app
from rnnbench.config import COMPARE_SETTINGS, GRID_SETTINGS, Grid
from rnnbench.core.data import Corpus
from rnnbench.core.synthetic import generate
from rnnbench.events import Notice, RunFinished, RunProgress, RunStarted, SweepPlanned

PACKAGE = Path(__file__).resolve().parents[1] / "rnnbench"
runner = CliRunner()


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_only_the_interface_draws():
    for path in PACKAGE.rglob("*.py"):
        name = path.relative_to(PACKAGE).as_posix()
        imports = imported_modules(path)
        if not name.startswith("cli/"):
            assert not any(m.split(".")[0] in ("rich", "typer") for m in imports), f"{name} imports rich or typer"
        if not name.startswith("cli/") and name != "__main__.py":  # `python -m rnnbench` is the command line
            assert not any(m == "rnnbench.cli" or m.startswith("rnnbench.cli.") for m in imports), f"{name} imports cli"


def test_the_package_has_no_import_circles():
    """Every import counts, deferred ones inside functions too: a circle hidden by a deferred import
    is still a circle of the design."""
    import sys

    sys.path.insert(0, str(PACKAGE.parent / "benchmarks"))
    try:
        from code_shape import circles, import_graph
    finally:
        sys.path.pop(0)
    graph = import_graph()
    assert len(graph) > 30 and sum(map(len, graph.values())) > 100  # the whole package was read
    assert circles(graph) == []
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # and one is found


def option_names(command: str) -> dict[str, list[str]]:
    import typer

    click_command = typer.main.get_command(app).commands[command]
    return {p.name: p.opts for p in click_command.params}


@pytest.mark.parametrize("command, declared", [("sweep", GRID_SETTINGS), ("compare-devices", COMPARE_SETTINGS)])
def test_every_setting_is_an_option_named_as_its_key_with_its_default_shown(command, declared):
    options = option_names(command)
    for name, setting in declared.items():
        assert options[name][0] == "--" + name.replace("_", "-")  # the preset key, as an option
        assert set(setting.aliases) <= set(options[name])
    shown = " ".join(runner.invoke(app, [command, "--help"], env={"COLUMNS": "400"}).output.split())
    for setting in declared.values():
        text = setting.default_text()
        if setting.type is bool:  # a flag pair shows the flag that is on by default
            text = setting.option[2:] if setting.default else "no-" + setting.option[2:]
        if text is not None:  # a default given in words is in parentheses
            assert setting.option in shown and (f"[default: {text}]" in shown or f"[default: ({text})]" in shown), (
                setting.name
            )


def test_a_presets_value_stands_unless_its_option_is_given(monkeypatch):
    from rnnbench import sweep

    grids = []
    monkeypatch.setattr(sweep, "run_sweep", lambda grid, *args, **kwargs: grids.append(grid) or [])
    args = ["sweep", "--preset", "smoke", "--no-progress"]
    assert runner.invoke(app, args + ["--lr", "0.1", "--time-budget", "3", "--cells", "gru"]).exit_code == 0
    assert (
        runner.invoke(app, args + ["--eval-every-steps", "7", "--patience", "2", "--batch-size", "100"]).exit_code == 0
    )
    given, other = grids
    assert given.dataset == "synthetic" and given.train.max_chars == 1_500_000 and given.train.batch_size == 32
    assert given.train.lr == 0.1 and given.train.time_budget_s == 3.0 and given.cells == ("gru",)
    # An option given with the value of its default still overrides the preset.
    assert (other.train.eval_every_steps, other.train.patience_evals, other.train.batch_size) == (7, 2, 100)


def test_the_report_tells_experiments_apart_by_what_runs_learn():
    from rnnbench.report import experiments

    def record(**changes):
        cfg = Grid.from_settings(
            dataset="x", cells=("lstm",), layers=(1,), sizes=(64,), devices=("cpu",), **changes
        ).expand("0" * 64)[0]
        return results.make_record(
            "sweep", cfg.run_id, "ok", cfg.as_dict(), {"host": "h"}, {"test_loss_nats": 1.0}, curve=[]
        )

    rows = results.frame([record(), record(warmup_steps=50), record(dropout=0.25), record(lr=0.01)])
    # Warm-up changes no loss; dropout is an axis inside an experiment; the learning rate makes another.
    assert sorted(len(e.rows) for e in experiments(rows)) == [1, 3]


def test_a_sweep_reports_what_it_does_as_events(tiny_text, tmp_path):
    from rnnbench.sweep import run_sweep

    grid = tiny_grid(tiny_text, cells=("rnn", "gru"))
    events = []
    records = run_sweep(grid, str(tmp_path), on_event=events.append)
    assert isinstance(events[0], SweepPlanned) and (events[0].runs, events[0].to_run) == (2, 2)
    kinds = [type(e) for e in events[1:] if not isinstance(e, Notice)]  # notices say how busy the machine is
    assert kinds == [RunStarted, RunProgress, RunProgress, RunFinished] * 2
    assert [e.progress.step for e in events if isinstance(e, RunProgress)] == [10, 20, 10, 20]
    assert [e.record for e in events if isinstance(e, RunFinished)] == records


def test_the_sweep_display_shows_every_run_in_flight():
    from rnnbench.cli.terminal import SweepDisplay
    from rnnbench.events import Progress

    runs = Grid.from_settings(cells=("lstm", "gru"), layers=(1,), sizes=(64,), devices=("cpu",)).expand("0" * 64)
    console = Console(record=True, width=160, force_terminal=True)
    with SweepDisplay(console=console) as display:
        display.handle(SweepPlanned("x", 1000, 10, 2, 2, 0, "two at once"))
        for cfg in runs:  # two runs in flight, reported interleaved
            display.handle(RunStarted(cfg))
        display.handle(RunProgress(runs[1], Progress(10, 100, 1.234, 5000.0)))
        display.handle(RunProgress(runs[0], Progress(20, 100, 2.345, 6000.0)))
        console.print(display.progress.get_renderable())
        display.handle(RunFinished(runs[0], results.make_record("sweep", "r", "ok", {}, {}, {"test_loss_nats": 1.5})))
    text = console.export_text()
    assert runs[0].label in text and runs[1].label in text and "loss 1.234" in text and "loss 2.345" in text
    assert f"{runs[0].run_id}  {runs[0].label}: test 1.500 nats" in text


def test_the_training_step_can_be_wrapped_without_changing_training():
    from rnnbench.core.train import Trainer, train, train_step

    corpus = Corpus("tiny", generate(40_000, seed=2), "test")
    cfg = Grid.from_settings(
        dataset="tiny",
        cells=("lstm",),
        layers=(2,),
        sizes=(24,),
        size_mode="hidden",
        devices=("cpu",),
        batch_size=16,
        seq_len=32,
        max_steps=30,
        eval_every_steps=10,
        dropout=0.1,
    ).expand(corpus.sha256)[0]
    calls = []

    def counted(*args):
        calls.append(1)
        return train_step(*args)

    trainer = Trainer(cfg, corpus)
    trainer.step_fn = counted
    wrapped = trainer.run()
    assert len(calls) == 30
    assert without_clock(wrapped.curve) == without_clock(
        train(cfg, corpus).curve
    )  # the step is all there is to training


class ReluRNN(torch.nn.RNN):
    """A toy cell for the test below: the vanilla RNN with ReLU instead of tanh."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, nonlinearity="relu", **kwargs)


def test_a_new_cell_is_one_entry_and_sweeps_and_samples(tiny_text, tmp_path, monkeypatch):
    from rnnbench.core.models import CELLS, Cell

    monkeypatch.setitem(CELLS, "relu", Cell("relu", ReluRNN, gates=1, state_arity=1, step=torch.rnn_relu_cell))
    out = tmp_path / "results"
    swept = runner.invoke(
        app,
        [
            "sweep",
            "--dataset",
            str(tiny_text),
            "--cells",
            "relu",
            "--layers",
            "2",
            "--sizes",
            "16",
            "--size-mode",
            "hidden",
            "--devices",
            "cpu",
            "--batch-size",
            "8",
            "--seq-len",
            "16",
            "--max-steps",
            "20",
            "--eval-every",
            "10",
            "--results-dir",
            str(out),
            "--no-progress",
        ],
    )
    assert swept.exit_code == 0, swept.output
    (row,) = results.load(out).itertuples()
    assert row.cell == "relu" and row.status == "ok" and row.test_loss_nats < 4.0
    sampled = runner.invoke(app, ["sample", row.run_id, "--length", "30", "--results-dir", str(out)])
    assert sampled.exit_code == 0 and len(sampled.stdout.strip()) > 0, sampled.output
    # The sampler steps through the entry's own cell function, as the module computes.
    from rnnbench.core.models import CharRNN
    from rnnbench.measure.sample import Stepper, layer_states

    model = CharRNN(20, "relu", 8, 2).eval()
    seq = torch.randint(0, 20, (1, 6))
    with torch.no_grad():
        full, _ = model(seq)
        _, state = model(seq[:, :3])
        states, step = layer_states(model, state), Stepper(model)
        for t in range(3, 6):
            assert torch.allclose(
                step(torch.nn.functional.one_hot(seq[:, t], 20).float(), states), full[:, t], atol=1e-5
            )


class DiagRNN(torch.nn.Module):
    """A toy cell whose recurrence is elementwise, h' = tanh(W x + b + u * h): its parameters and
    matrix products are not torch's layout, so its Cell entry says them."""

    def __init__(self, input_size, hidden_size, num_layers, batch_first=True, dropout=0.0):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        for k in range(num_layers):
            inputs = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", torch.nn.Parameter(torch.zeros(hidden_size, inputs)))
            self.register_parameter(f"weight_hh_l{k}", torch.nn.Parameter(torch.zeros(hidden_size)))
            self.register_parameter(f"bias_ih_l{k}", torch.nn.Parameter(torch.zeros(hidden_size)))

    @staticmethod
    def diag_step(x, h, w_ih, u, b):
        return torch.tanh(torch.nn.functional.linear(x, w_ih, b) + u * h)

    def forward(self, x, state=None):
        if state is None:
            state = x.new_zeros(self.num_layers, x.size(0), self.hidden_size)
        finals = []
        for k in range(self.num_layers):
            weights = [getattr(self, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih")]
            h, outputs = state[k], []
            for t in range(x.size(1)):
                h = self.diag_step(x[:, t], h, *weights)
                outputs.append(h)
            finals.append(h)
            x = torch.stack(outputs, dim=1)
        return x, torch.stack(finals)


def test_a_cell_of_another_shape_counts_samples_and_reports_from_its_entry(tiny_text, tmp_path, monkeypatch):
    from rnnbench.core.models import CELLS, Cell, CharRNN, flops_per_char, n_params
    from rnnbench.measure.sample import Stepper, layer_states

    entry = Cell(
        "diag",
        DiagRNN,
        gates=1,
        state_arity=1,
        step=DiagRNN.diag_step,  # a module attribute named `step` would take precedence; this one is not
        weights=("weight_ih", "weight_hh", "bias_ih"),
        colour="tab:purple",
        layer_params=lambda inputs, hidden: hidden * inputs + 2 * hidden,
        layer_matmuls=lambda inputs, hidden: [(inputs, hidden, True)],
    )
    monkeypatch.setitem(CELLS, "diag", entry)
    model = CharRNN(20, "diag", 8, 2)
    assert sum(p.numel() for p in model.parameters()) == n_params("diag", 20, 8, 2)
    # one-hot input product (forward and weight gradient), second layer's (all three), output (all three)
    assert flops_per_char("diag", 20, 8, 2) == 2 * 2 * 20 * 8 + 3 * 2 * 8 * 8 + 3 * 2 * 8 * 20
    seq = torch.randint(0, 20, (1, 6))
    with torch.no_grad():
        full, _ = model.eval()(seq)
        _, state = model(seq[:, :3])
        states, step = layer_states(model, state), Stepper(model)
        for t in range(3, 6):
            logits = step(torch.nn.functional.one_hot(seq[:, t], 20).float(), states)
            assert torch.allclose(logits, full[:, t], atol=1e-5)

    out, page = tmp_path / "results", tmp_path / "REPORT.md"
    common = ["--dataset", str(tiny_text), "--layers", "1", "--sizes", "16", "--size-mode", "hidden"]
    common += ["--devices", "cpu", "--batch-size", "8", "--seq-len", "16", "--max-steps", "10", "--eval-every", "5"]
    swept = runner.invoke(app, ["sweep", *common, "--cells", "diag,lstm", "--results-dir", str(out), "--no-progress"])
    assert swept.exit_code == 0, swept.output
    rows = results.load(out).set_index("cell")
    assert rows.loc["diag", "n_params"] == n_params("diag", int(rows.loc["diag", "vocab_size"]), 16, 1)
    reported = runner.invoke(app, ["report", "--results-dir", str(out), "--out", str(page)])
    assert reported.exit_code == 0, reported.output
    text = page.read_text()
    header = next(line for line in text.splitlines() if "LSTM 1" in line and "DIAG 1" in line)
    assert header.index("LSTM") < header.index("DIAG")  # the registry's order: the paper's cells, then new ones
    assert any(f.suffix == ".png" for f in (tmp_path / "figures").iterdir())


def test_a_new_kind_of_device_is_swept_and_reported_from_its_entry_alone(tiny_text, tmp_path, monkeypatch):
    """A device kind torch cannot allocate on here (this torch has no XPU): registered as one entry,
    it is resolved from --devices, planned, swept (each run recorded as failed with torch's own
    error, the sweep going on) and reported under the hardware name its entry gives: nothing else in
    rnnbench names a kind of device."""
    from rnnbench.core.devices import DEVICE_KINDS, DeviceKind

    entry = DeviceKind("xpu", synchronize=lambda device: None, present=lambda: ["xpu"], model_name=lambda d: "Test XPU")
    monkeypatch.setitem(DEVICE_KINDS, "xpu", entry)
    out, page = tmp_path / "results", tmp_path / "REPORT.md"
    common = ["--dataset", str(tiny_text), "--cells", "gru,lstm", "--layers", "1", "--sizes", "16"]
    common += ["--size-mode", "hidden", "--batch-size", "8", "--seq-len", "16", "--max-steps", "10"]
    swept = runner.invoke(app, ["sweep", *common, "--devices", "xpu,cpu", "--results-dir", str(out), "--no-progress"])
    assert swept.exit_code == 0, swept.output
    rows = results.load(out).set_index(["device", "cell"]).sort_index()
    assert list(rows.status) == ["ok", "ok", "failed", "failed"]
    assert rows.loc[("xpu", "gru"), "hardware"].startswith("Test XPU")
    assert "XPU" in rows.loc[("xpu", "gru"), "error"]  # torch's words, not a stand-in device's figures
    reported = runner.invoke(app, ["report", "--results-dir", str(out), "--out", str(page)])
    assert reported.exit_code == 0, reported.output
    text = page.read_text()
    assert "on xpu (Test XPU" in text and "on cpu (" in text

"""--tensorboard: the sweep's curves and hyperparameters as TensorBoard event files, read back."""

from __future__ import annotations

import pytest
from conftest import tiny_args
from test_cli import invoke, stored

pytest.importorskip("tensorboard", reason="needs pip install 'rnnbench[tensorboard]' (in the test extra)")


def test_a_sweep_writes_each_runs_curves_and_config(tiny_text, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, board = tmp_path / "results", tmp_path / "tb"
    result = invoke(
        tiny_args(tiny_text, out, cells="lstm,gru", max_steps=40, eval_every=10) + ["--tensorboard", str(board)]
    )
    assert result.exit_code == 0, result.output
    records = stored(out)
    folders = sorted(p for p in board.iterdir() if p.is_dir())
    assert len(folders) == 2 and {f.name.split()[0] for f in folders} == set(records)
    for folder in folders:
        events = EventAccumulator(str(folder)).Reload()
        tags = set(events.Tags()["scalars"])
        assert {
            "loss/train_nats",
            "loss/train_bits_per_char",
            "loss/val_nats",
            "loss/val_bits_per_char",
            "optimizer/lr",
            "speed/train_chars_per_s",
        } <= tags
        record = records[folder.name.split()[0]]
        val = events.Scalars("loss/val_nats")
        assert [e.step for e in val] == [p["step"] for p in record.curve]
        assert val[-1].value == pytest.approx(record.curve[-1]["val_loss_nats"], rel=1e-6)
        assert events.Scalars("optimizer/lr")[0].value == pytest.approx(record.config["train"]["lr"])
        assert "_hparams_/session_start_info" in events.summary_metadata  # the config, as hyperparameters
        assert events.Scalars("final/test_loss_nats")[0].value == pytest.approx(record.metrics["test_loss_nats"])


def test_without_the_package_it_is_one_line(tiny_text, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("no tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    result = invoke(tiny_args(tiny_text, tmp_path / "r") + ["--tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 2 and "pip install 'rnnbench[tensorboard]'" in result.output

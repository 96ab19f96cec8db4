"""CharRNN: shapes, initialisation, exact parameter counts, size matching and FLOP counts."""

from __future__ import annotations

import pytest
import torch

from rnnbench.core.models import CELLS, CharRNN, flops_per_char, hidden_size_for, matmul_shapes, n_params
from rnnbench.errors import UsageError

VOCAB = 87  # War and Peace


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("num_layers", [1, 3])
def test_forward_shapes_and_exact_parameter_count(cell, num_layers):
    model = CharRNN(VOCAB, cell, hidden_size=24, num_layers=num_layers, dropout=0.1)
    x = torch.randint(0, VOCAB, (5, 7))
    logits, state = model(x)
    assert logits.shape == (5, 7, VOCAB)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (num_layers, 5, 24)
    assert sum(p.numel() for p in model.parameters()) == n_params(cell, VOCAB, 24, num_layers)


def test_initialisation_is_char_rnn_uniform_with_lstm_forget_bias_one():
    model = CharRNN(VOCAB, "lstm", hidden_size=32, num_layers=2)
    for name, p in model.named_parameters():
        if "bias" not in name or "head" in name:
            assert p.abs().max() <= 0.08 and p.std() > 0.03, name
    for layer in range(2):
        b_ih = getattr(model.rnn, f"bias_ih_l{layer}")
        b_hh = getattr(model.rnn, f"bias_hh_l{layer}")
        assert torch.all((b_ih + b_hh)[32:64] == 1.0)  # forget gate: torch's second block


def test_paper_era_lstm_init_leaves_the_forget_bias_uniform():
    torch.manual_seed(3)
    one = CharRNN(VOCAB, "lstm", hidden_size=32, num_layers=2)
    torch.manual_seed(3)
    uniform = CharRNN(VOCAB, "lstm", hidden_size=32, num_layers=2, lstm_forget_bias="uniform")
    for (name, a), (_, b) in zip(one.named_parameters(), uniform.named_parameters()):
        if name.startswith("rnn.bias"):
            assert torch.equal(a[:32], b[:32]) and torch.equal(a[64:], b[64:]), name  # other gates: the same draw
            assert b[32:64].abs().max() <= 0.08 and b[32:64].std() > 0.02, name  # forget gate: drawn like them
        else:
            assert torch.equal(a, b), name


def reset_before_reference(x, h, w_ih, w_hh, b_ih, b_hh):
    """char-rnn's GRU step (model/GRU.lua) written out gate by gate, in torch's r, z, n order."""
    W_ir, W_iz, W_in = w_ih.chunk(3)
    W_hr, W_hz, W_hn = w_hh.chunk(3)
    b_ir, b_iz, b_in = b_ih.chunk(3)
    b_hr, b_hz, b_hn = b_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)  # the reset gate before the product
    return (1 - z) * n + z * h


def test_reset_before_gru_is_char_rnns_equation_with_torchs_parameters():
    from rnnbench.core.models import ResetBeforeGRU

    torch.manual_seed(0)
    fused = CharRNN(VOCAB, "gru", 16, 2)
    torch.manual_seed(0)
    model = CharRNN(VOCAB, "gru", 16, 2, gru_reset="before")
    assert isinstance(model.rnn, ResetBeforeGRU)
    assert [(n, p.shape) for n, p in model.named_parameters()] == [(n, p.shape) for n, p in fused.named_parameters()]
    assert all(
        torch.equal(p, q) for p, q in zip(model.parameters(), fused.parameters())
    )  # the same seed, the same init
    x = torch.randint(0, VOCAB, (3, 6))
    logits, state = model(x)
    # Step by step through the reference equations, layer by layer.
    inputs = torch.nn.functional.one_hot(x, VOCAB).float()
    finals = []
    for k in range(2):
        w = [getattr(model.rnn, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h, outs = torch.zeros(3, 16), []
        for t in range(6):
            h = reset_before_reference(inputs[:, t], h, *w)
            outs.append(h)
        inputs = torch.stack(outs, 1)
        finals.append(h)
    assert torch.allclose(state, torch.stack(finals), atol=1e-6)
    assert torch.allclose(logits, model.head(inputs), atol=1e-6)
    # With the reset gate shut open (r = 1) the two placements are the same function.
    for m in (model, fused):
        for k in range(2):
            getattr(m.rnn, f"bias_ih_l{k}").data[:16] = 40.0
    assert torch.allclose(model(x)[0], fused(x)[0], atol=1e-5)
    assert not torch.allclose(CharRNN(VOCAB, "gru", 16, 2, gru_reset="before")(x)[0], fused(x)[0], atol=1e-3)


def test_uses_the_fused_torch_modules():
    assert isinstance(CharRNN(VOCAB, "gru", 8, 1).rnn, torch.nn.GRU)
    assert CharRNN(VOCAB, "rnn", 8, 1).rnn.nonlinearity == "tanh"


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("size", [64, 128, 256, 512])
def test_params_mode_lands_on_the_closest_width(cell, num_layers, size):
    budget = n_params("lstm", VOCAB, size, 1)
    hidden = hidden_size_for(cell, num_layers, size, VOCAB, "params")
    error = abs(n_params(cell, VOCAB, hidden, num_layers) - budget)
    assert error / budget < 0.03
    for neighbour in (hidden - 1, hidden + 1):
        assert abs(n_params(cell, VOCAB, neighbour, num_layers) - budget) >= error


def test_paper_parameter_budgets():
    # The paper: about 50K, 130K, 400K and 1.3M parameters; exact for War and Peace's 87 bytes.
    budgets = [n_params("lstm", VOCAB, size, 1) for size in (64, 128, 256, 512)]
    assert budgets == [44_823, 122_327, 375_639, 1_275_479]
    assert hidden_size_for("lstm", 1, 512, VOCAB, "params") == 512


def test_hidden_mode_and_bad_values():
    assert hidden_size_for("gru", 2, 100, VOCAB, "hidden") == 100
    with pytest.raises(UsageError):
        hidden_size_for("gru", 2, 100, VOCAB, "width")
    with pytest.raises(UsageError):
        hidden_size_for("lstn", 2, 100, VOCAB, "hidden")


@pytest.mark.parametrize("cell, gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_flops_count_every_matmul(cell, gates):
    v, h = VOCAB, 128
    shapes = matmul_shapes(cell, v, h, 2)
    assert shapes == [
        (v, gates * h, False),
        (h, gates * h, True),
        (h, gates * h, True),
        (h, gates * h, True),
        (h, v, True),
    ]
    forward = 2 * (v * gates * h + 3 * h * gates * h + h * v)
    assert flops_per_char(cell, v, h, 2, training=False) == forward
    # Backward: weight and input gradients for every product, but no input gradient for one-hot data.
    assert flops_per_char(cell, v, h, 2) == 3 * forward - 2 * v * gates * h


def test_flops_match_the_weight_matrices_of_a_real_model():
    # Every weight matrix is used once per character forward: 2 x its elements.
    model = CharRNN(VOCAB, "lstm", 64, 2)
    weights = sum(p.numel() for name, p in model.named_parameters() if "weight" in name)
    assert flops_per_char("lstm", VOCAB, 64, 2, training=False) == 2 * weights

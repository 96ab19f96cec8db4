"""CharRNN over the fused torch recurrent modules, parameter counting, size matching and FLOPs.

    >>> from rnnbench.core.models import CharRNN, hidden_size_for, n_params
    >>> hidden = hidden_size_for("gru", num_layers=2, size=128, vocab_size=87, size_mode="params")
    >>> model = CharRNN(vocab_size=87, cell="gru", hidden_size=hidden, num_layers=2)
    >>> sum(p.numel() for p in model.parameters()) == n_params("gru", 87, hidden, 2)
    True

This module does no I/O. A new cell type is one entry in CELLS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnbench.choices import GRU_RESETS, SIZE_MODES, check_choice
from rnnbench.errors import UsageError

TORCH_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # torch's parameters of a layer, by name


@dataclass(frozen=True)
class Cell:
    """A kind of recurrent cell: all that training, the parameter and FLOP counts, the sampler,
    compare-devices and the report need of it; a new cell is one entry (`register_cell`).

    `module` is a recurrent module taking (input_size, hidden_size, num_layers, batch_first=,
    dropout=), with attributes hidden_size and num_layers and the parameters `<weight>_l<k>` of
    each layer k for every name in `weights`. The counts default to torch's layout: `gates` blocks
    in W_ih, W_hh and two biases."""

    name: str
    module: type[nn.Module]
    gates: int  # gate blocks in its weight matrices: parameter and FLOP counts
    state_arity: int  # tensors in its carried state: 2 for an LSTM's (h, c), else 1 (h)
    # One time step of one layer, as torch.lstm_cell(x, state, *weights): what the sampler calls
    # (a module with a `step` of its own, as ResetBeforeGRU, is stepped by that).
    step: Callable
    forget_gate: int | None = None  # the gate block whose bias may start at 1 (lstm_forget_bias)
    weights: tuple[str, ...] = TORCH_WEIGHTS  # a layer's parameters as `step` takes them, by name
    colour: str = "grey"  # its colour in the report's figures
    # (inputs, hidden) -> one layer's parameter count; None: torch's layout of `gates` blocks.
    layer_params: Callable[[int, int], int] | None = None
    # (inputs, hidden) -> one layer's matrix products per character as (in_features,
    # out_features, takes the layer's input); None: torch's W_ih x and W_hh h.
    layer_matmuls: Callable[[int, int], list[tuple[int, int, bool]]] | None = None

    def params(self, inputs: int, hidden: int) -> int:
        if self.layer_params is not None:
            return self.layer_params(inputs, hidden)
        return self.gates * hidden * (inputs + hidden) + 2 * self.gates * hidden  # W_ih, W_hh, two biases

    def matmuls(self, inputs: int, hidden: int) -> list[tuple[int, int, bool]]:
        if self.layer_matmuls is not None:
            return self.layer_matmuls(inputs, hidden)
        return [(inputs, self.gates * hidden, True), (hidden, self.gates * hidden, False)]


# In the paper's column order, which the report keeps; cells registered later follow.
CELLS: dict[str, Cell] = {
    "lstm": Cell("lstm", nn.LSTM, 4, 2, torch.lstm_cell, forget_gate=1, colour="tab:blue"),  # gates i, f, g, o
    "rnn": Cell("rnn", nn.RNN, 1, 1, torch.rnn_tanh_cell, colour="tab:orange"),
    "gru": Cell("gru", nn.GRU, 3, 1, torch.gru_cell, colour="tab:green"),
}


def register_cell(cell: Cell) -> None:
    """Add (or replace) a kind of cell: the grid, training, sampling, compare-devices and the report
    read it from here."""
    CELLS[cell.name] = cell


def in_cell_order(names) -> list[str]:
    """The distinct cell names among `names`: registered cells in CELLS' order, then any others
    (rows of a cell this process has not registered) by name."""
    present = set(names)
    return [c for c in CELLS if c in present] + sorted(present - set(CELLS))


def cell_colour(name: str) -> str:
    return CELLS[name].colour if name in CELLS else "grey"


INIT_RANGE = 0.08  # char-rnn's uniform initialisation


class ResetBeforeGRU(nn.Module):
    """A stacked GRU as char-rnn computed it: the reset gate multiplies the previous state before
    the recurrent product,

        n = tanh(W_in x + b_in + W_hn (r * h) + b_hn),

    where torch's nn.GRU and cuDNN compute n = tanh(W_in x + b_in + r * (W_hn h + b_hn)). The
    gates r and z and the new state h' = (1 - z) n + z h are nn.GRU's. Its parameters are nn.GRU's
    (names, shapes, order), so the same seed draws the same initial weights. Plain torch ops, one
    time step at a time (the input products of all steps at once): there is no fused kernel for it.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, batch_first: bool = True, dropout: float = 0.0
    ):
        super().__init__()
        if not batch_first:
            raise ValueError("ResetBeforeGRU takes batch-first input only")
        self.input_size, self.hidden_size, self.num_layers, self.dropout = input_size, hidden_size, num_layers, dropout
        for k in range(num_layers):
            inputs = input_size if k == 0 else hidden_size
            for name, shape in (
                ("weight_ih", (3 * hidden_size, inputs)),
                ("weight_hh", (3 * hidden_size, hidden_size)),
                ("bias_ih", (3 * hidden_size,)),
                ("bias_hh", (3 * hidden_size,)),
            ):
                self.register_parameter(f"{name}_l{k}", nn.Parameter(torch.empty(shape)))
        # As nn.GRU draws its initial weights (CharRNN overwrites them): the random numbers drawn
        # after this are then the same as with nn.GRU.
        for p in self.parameters():
            nn.init.uniform_(p, -(hidden_size**-0.5), hidden_size**-0.5)

    @staticmethod
    def step(x: torch.Tensor, h: torch.Tensor, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
        """One time step of one layer, with torch.gru_cell's signature (the sampler calls it)."""
        return ResetBeforeGRU._update(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)

    @staticmethod
    def _update(gi: torch.Tensor, h: torch.Tensor, w_hh, b_hh) -> torch.Tensor:
        hidden = h.size(-1)
        rz = torch.sigmoid(gi[:, : 2 * hidden] + F.linear(h, w_hh[: 2 * hidden], b_hh[: 2 * hidden]))
        r, z = rz[:, :hidden], rz[:, hidden:]
        n = torch.tanh(gi[:, 2 * hidden :] + F.linear(r * h, w_hh[2 * hidden :], b_hh[2 * hidden :]))
        return n + z * (h - n)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """x (batch, time, input) -> (outputs (batch, time, hidden), final state (layers, batch, hidden))."""
        if state is None:
            state = x.new_zeros(self.num_layers, x.size(0), self.hidden_size)
        finals = []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = (
                getattr(self, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
            gi = F.linear(x, w_ih, b_ih)  # every step's input products in one
            h, outputs = state[k], []
            for t in range(x.size(1)):
                h = self._update(gi[:, t], h, w_hh, b_hh)
                outputs.append(h)
            finals.append(h)
            x = torch.stack(outputs, dim=1)
            if k < self.num_layers - 1:  # between layers, as nn.GRU's dropout
                x = F.dropout(x, self.dropout, self.training)
        return x, torch.stack(finals)


def check_gru_reset(gru_reset: str) -> None:
    check_choice("gru_reset", gru_reset, GRU_RESETS)


def check_cell(cell: str) -> None:
    check_choice("cell", cell, CELLS)


def check_size_mode(size_mode: str) -> None:
    check_choice("size_mode", size_mode, SIZE_MODES)


class CharRNN(nn.Module):
    """One-hot characters in, a stack of recurrent layers, a linear layer to next-character logits."""

    def __init__(
        self,
        vocab_size: int,
        cell: str,
        hidden_size: int,
        num_layers: int,
        dropout: float = 0.0,
        lstm_forget_bias: str = "1",
        gru_reset: str = "after",
    ):
        super().__init__()
        check_cell(cell)
        check_gru_reset(gru_reset)
        module = ResetBeforeGRU if cell == "gru" and gru_reset == "before" else CELLS[cell].module
        self.vocab_size, self.cell = vocab_size, cell
        # torch applies `dropout` between stacked layers only; self.drop covers the top layer.
        self.rnn = module(
            vocab_size, hidden_size, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.reset_parameters(cell, lstm_forget_bias)

    def reset_parameters(self, cell: str, lstm_forget_bias: str = "1") -> None:
        """Every parameter uniform in [-INIT_RANGE, INIT_RANGE], as char-rnn; the LSTM's forget-gate
        bias then 1 (char-rnn from 2015-09-20) unless `lstm_forget_bias` is "uniform"."""
        for p in self.parameters():
            nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)
        gate = CELLS[cell].forget_gate
        if gate is not None and lstm_forget_bias == "1":
            # Forget-gate bias 1, as char-rnn: torch adds two biases, so one carries the 1 and the other is zero.
            hidden = self.rnn.hidden_size
            block = slice(gate * hidden, (gate + 1) * hidden)
            for layer in range(self.rnn.num_layers):
                getattr(self.rnn, f"bias_ih_l{layer}").data[block] = 1.0
                getattr(self.rnn, f"bias_hh_l{layer}").data[block] = 0.0

    def forward(self, indices: torch.Tensor, state=None):
        """indices: (batch, time) of any integer type (a corpus is stored as uint8 and widened
        here, batch by batch) -> logits (batch, time, vocab), new recurrent state."""
        x = F.one_hot(indices.long(), self.vocab_size).to(self.head.weight.dtype)
        out, state = self.rnn(x, state)
        return self.head(self.drop(out)), state


def n_params(cell: str, vocab_size: int, hidden_size: int, num_layers: int) -> int:
    """Exact parameter count of CharRNN, without building it."""
    check_cell(cell)
    layers = sum(CELLS[cell].params(vocab_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers))
    return layers + hidden_size * vocab_size + vocab_size  # output layer


def hidden_size_for(cell: str, num_layers: int, size: int, vocab_size: int, size_mode: str) -> int:
    """The hidden width of a grid cell.

    size_mode "hidden": `size` is the width. size_mode "params": `size` names the parameter budget
    of a 1-layer LSTM that wide on this vocabulary (the paper's Table 1), and the width returned is
    the one whose parameter count is closest to that budget (the smaller width on a tie).
    """
    check_cell(cell)
    if size < 1 or num_layers < 1:
        raise UsageError(f"sizes and layer counts must be positive, got size {size} and {num_layers} layers")
    check_size_mode(size_mode)
    if size_mode == "hidden":
        return size
    budget = n_params("lstm", vocab_size, size, 1)
    # The count grows with the width, so walk up until it passes the budget.
    hidden = 1
    while n_params(cell, vocab_size, hidden + 1, num_layers) <= budget:
        hidden += 1
    below = abs(budget - n_params(cell, vocab_size, hidden, num_layers))
    above = abs(n_params(cell, vocab_size, hidden + 1, num_layers) - budget)
    return hidden if below <= above else hidden + 1


def matmul_shapes(cell: str, vocab_size: int, hidden_size: int, num_layers: int) -> list[tuple[int, int, bool]]:
    """(in_features, out_features, input needs a gradient) of every matrix product one character
    goes through, forward. The one-hot input is data, so the first layer's products of its input
    have no gradient with respect to it."""
    check_cell(cell)
    shapes = []
    for layer in range(num_layers):
        inputs = vocab_size if layer == 0 else hidden_size
        shapes += [(k, n, layer > 0 or not of_input) for k, n, of_input in CELLS[cell].matmuls(inputs, hidden_size)]
    return shapes + [(hidden_size, vocab_size, True)]


def flops_per_char(cell: str, vocab_size: int, hidden_size: int, num_layers: int, training: bool = True) -> int:
    """Analytic floating-point operations per character, counting matrix products only.

    A product of a k-vector by a k x n matrix is 2kn operations (multiply and add). Training adds
    the backward pass: for every forward product, one of the same size for the weight gradient and,
    where the input needs one, one for the input gradient; so 3x the forward count for all products
    but the first layer's one-hot input, which is 2x. Gate nonlinearities, biases and the softmax
    are O(hidden) per character against O(hidden^2) and are left out.
    """
    total = 0
    for k, n, input_grad in matmul_shapes(cell, vocab_size, hidden_size, num_layers):
        passes = (3 if input_grad else 2) if training else 1
        total += passes * 2 * k * n
    return total

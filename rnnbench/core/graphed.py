"""The training step captured once in a CUDA graph and replayed: one launch per step instead of
hundreds, so that small models keep a GPU busy.

    >>> from rnnbench.core.graphed import GraphedStep
    >>> trainer.step_fn = GraphedStep(train_step)  # what Trainer does on a GPU  # doctest: +SKIP

GraphedStep has train_step's signature and does the same work: forward, loss, backward, gradient
clipping, the optimizer step, and carrying the hidden state to the next step. Its first `warmup`
calls run train_step eagerly on a side stream (cuDNN and the caching allocator settle their
workspaces, as torch's CUDA-graph notes ask); the next call captures the whole step, then every
call copies its batch into static buffers and replays. The carried state lives in static buffers
that the graph itself overwrites with the new state; a state of None (a new epoch) zeroes them.
The loss is a device tensor that the next replay overwrites, so it is summed before then, in
stream order, without a sync.

The optimizer must be built with capturable=True and its learning rate as a device tensor
(`Trainer` does both), so that a decayed learning rate reaches the replays. Dropout draws new
masks at every replay: the graph advances the CUDA generator's offset each time. If capture fails,
this step and all later ones run eagerly and `failure` says why.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from rnnbench.core.models import CELLS, CharRNN
from rnnbench.errors import one_line

WARMUP_CALLS = 3  # eager steps before the capture; within the steps left out of the timings


class GraphedStep:
    """train_step, captured in a CUDA graph after `warmup` eager calls, then replayed."""

    def __init__(self, step: Callable, warmup: int = WARMUP_CALLS):
        self.step = step  # the eager step (train.train_step): warm-up, and the fallback when capture fails
        self.warmup = warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failure: str | None = None  # why capture failed; the steps then run eagerly
        self.x = self.y = self.loss = None
        self.state: tuple[torch.Tensor, ...] | None = None  # the carried state's buffers

    @property
    def replaying(self) -> bool:
        return self.graph is not None

    def __call__(
        self,
        model: CharRNN,
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        state,
        clip: Callable,
    ):
        if self.failure is not None:
            return self.step(model, optimizer, x, y, state, clip)
        if self.graph is None and self.calls < self.warmup:
            self.calls += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step(model, optimizer, x, y, state, clip)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            try:
                self._capture(model, optimizer, x, y, clip)
            except Exception as exc:  # any op that cannot be captured: train eagerly instead
                self.failure = one_line(exc)
                self.graph = None
                torch.cuda.synchronize()
                return self.step(model, optimizer, x, y, state, clip)
        self.x.copy_(x)
        self.y.copy_(y)
        self._load_state(state)
        self.graph.replay()
        return self.loss, self._as_model_state()

    def _as_model_state(self):
        """The buffers as the model takes and returns a state: (h, c) for an LSTM, h otherwise."""
        return self.state if len(self.state) == 2 else self.state[0]

    def _load_state(self, state) -> None:
        if state is None:  # a new epoch: a fresh state, as eager training passes None
            for buffer in self.state:
                buffer.zero_()
            return
        parts = state if isinstance(state, tuple) else (state,)
        if all(p is b for p, b in zip(parts, self.state)):
            return  # the state the last replay left: already in place
        for buffer, part in zip(self.state, parts):
            buffer.copy_(part)

    def _capture(
        self, model: CharRNN, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, clip: Callable
    ) -> None:
        rnn = model.rnn
        shape = (rnn.num_layers, x.size(0), rnn.hidden_size)
        self.state = tuple(torch.zeros(shape, device=x.device) for _ in range(CELLS[model.cell].state_arity))
        self.x, self.y = x.clone(), y.clone()
        optimizer.zero_grad(set_to_none=True)  # the gradients are then allocated in the graph's pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits, new_state = model(self.x, self._as_model_state())
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), self.y.reshape(-1).long())
            loss.backward()
            clip(model.parameters())
            optimizer.step()
            for buffer, part in zip(self.state, new_state if isinstance(new_state, tuple) else (new_state,)):
                buffer.copy_(part.detach())  # carried to the next replay
            self.loss = loss.detach()
        self.graph = graph

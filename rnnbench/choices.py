"""The values each text setting takes and the layout's default shares, declared once: the settings
(rnnbench.config), the models, the data layout and the checks read them here. Torch-free, so
that `rnnbench --help` stays quick and nothing here imports the parts that use it.

    >>> check_choice("size_mode", "width", SIZE_MODES)
    Traceback (most recent call last):
    ...
    rnnbench.errors.UsageError: unknown size_mode 'width': choose from hidden, params
"""

from __future__ import annotations

from rnnbench.errors import UsageError

CLIP_MODES = ("norm", "clamp")  # rnnbench.core.train.GradClip
LAYOUTS = ("contiguous", "chunked")  # rnnbench.core.data.Layout
FORGET_BIASES = ("1", "uniform")  # rnnbench.core.models.CharRNN.reset_parameters
GRU_RESETS = ("after", "before")  # torch's and cuDNN's GRU, or char-rnn's (rnnbench.core.models.ResetBeforeGRU)
SIZE_MODES = ("hidden", "params")  # rnnbench.core.models.hidden_size_for
TRAIN_FRACTION, VAL_FRACTION = 0.8, 0.1  # the layout's default shares of the text: test is the rest


def check_choice(name: str, value, choices) -> None:
    """`value` one of `choices` (a tuple, or a registry's dict), else a one-line UsageError."""
    if value not in choices:
        raise UsageError(f"unknown {name} '{value}': choose from {', '.join(choices)}")

"""rnnbench: loss and throughput of character-level RNN, LSTM and GRU language models.

    >>> import rnnbench
    >>> rnnbench.__version__
    '0.1.0'

The library is importable without torch being loaded; the modules that need it
(data, models, train, sweep, devices) import it themselves.

    from rnnbench.config import load_preset
    from rnnbench.sweep import run_sweep
    from rnnbench.results import load
    run_sweep(load_preset("smoke"), results_dir="my-results")   # None: files.default_results_dir()
    df = load("my-results")
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

"""The training core: one run, from the corpus's bytes to its losses and step times.

data        corpora (registry, download, verify, cache) and their layout into streams
synthetic   the generated corpus
models      CharRNN, the cells, the initialisation, parameter counts, size matching, FLOPs
train       one training step, and the Trainer of a whole run (budgets, evaluation, checkpoints)
graphed     the training step captured in a CUDA graph and replayed
timing      step timers and the statistics of their samples
devices     the device kinds, device discovery, and the hardware and software of every row
checkpoint  best.pt and latest.pt
"""

"""Measurements besides the sweep's training runs, each stored as rows of its own kind.

device_speed   compare-devices: the same models timed on each device, with each device's limits
ngram          the n-gram baselines
sample         text generated from a trained run's checkpoint
"""

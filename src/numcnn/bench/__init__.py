"""Benchmarks measured in one run: numcnn against its loop versions and PyTorch.

`numcnn bench` and benchmarks/*.py call these.
"""

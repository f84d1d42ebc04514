"""Benchmarks measured in one run: numcnn against its loop versions and PyTorch.

`numcnn bench` and benchmarks/*.py call these.

May import ops (and their engine, to time its parts), nn, models, optim,
interop (the PyTorch twins) and numcnn.blas_env; only the CLI and
benchmarks/ import bench.
"""

"""Compatibility layers: other courses' APIs over numcnn (numcnn.compat.cs231n).

May import numcnn's public API only (ops, nn, models, data, gradcheck, optim,
solver, viz: public names, no underscored ones); nothing in numcnn imports compat.
"""

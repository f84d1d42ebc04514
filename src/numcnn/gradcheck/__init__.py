"""numcnn.gradcheck: numerical gradients and the checks built on them.

    numerical.py  eval_numerical_gradient, eval_numerical_gradient_array,
                  grad_check_sparse, centred_difference, rel_error (CS231n's
                  names and signatures), check_op and check_loss
    suite.py      the all-ops check in float64 that `numcnn gradcheck` runs

A side room: it may import numcnn.ops, numcnn.nn, numcnn.checks and numpy;
never models, training, the CLI or io.
"""

from .numerical import (
    centred_difference,
    check_loss,
    check_op,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)

__all__ = [
    "centred_difference",
    "check_loss",
    "check_op",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "grad_check_sparse",
    "rel_error",
]

"""CS231n's gradient_check.py (and the notebooks' rel_error), with the assignment's defaults.

numcnn.gradcheck has the same functions with quieter defaults; these keep
the assignment's: eval_numerical_gradient prints every coordinate unless
told otherwise, grad_check_sparse draws coordinates with Python's random
(so random.seed repeats them) and returns nothing.
"""

from random import randrange

import numpy as np

from ... import gradcheck
from ...gradcheck import centred_difference, eval_numerical_gradient_array, rel_error


def eval_numerical_gradient(f, x, verbose=True, h=0.00001):
    """Gradient of the scalar f at x by centred differences; x is perturbed in place and restored."""
    return gradcheck.eval_numerical_gradient(f, x, verbose=verbose, h=h)


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5):
    """Print the numerical and analytic gradient, and their relative error, at num_checks random coordinates."""
    for _ in range(num_checks):
        index = tuple(randrange(m) for m in x.shape)
        plus, minus = centred_difference(f, x, index, h)
        numerical = float((plus - minus) / (2 * h))
        analytic = analytic_grad[index]
        error = abs(numerical - analytic) / (abs(numerical) + abs(analytic))
        print(f"numerical: {numerical:f} analytic: {analytic:f}, relative error: {error:e}")


def eval_numerical_gradient_blobs(f, inputs, output, h=1e-5):
    """Numerical gradients of f(*inputs, output) for blobs: objects with .vals and .diffs arrays.

    f writes its result into output.vals; each input's gradient is that of
    sum(output.vals * output.diffs) with respect to its .vals. Returns one
    array per input.
    """

    def outputs(_):
        f(*inputs, output)
        return output.vals

    numeric_diffs = []
    for blob in inputs:
        diff = np.zeros_like(blob.diffs)
        for index in np.ndindex(blob.vals.shape):
            plus, minus = centred_difference(outputs, blob.vals, index, h)
            diff[index] = np.sum((plus - minus) * output.diffs) / (2.0 * h)
        numeric_diffs.append(diff)
    return numeric_diffs


def eval_numerical_gradient_net(net, inputs, output, h=1e-5):
    """eval_numerical_gradient_blobs for a net whose forward() reads inputs and writes output."""
    return eval_numerical_gradient_blobs(lambda *args: net.forward(), inputs, output, h=h)


__all__ = [
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "eval_numerical_gradient_blobs",
    "eval_numerical_gradient_net",
    "grad_check_sparse",
    "rel_error",
]

"""CS231n's gradient_check.py (and the notebooks' rel_error)."""

from ...gradcheck import eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse", "rel_error"]

"""A tour of numcnn.ops: a tiny convolutional network written with the pure functions.

    python examples/ops_tour.py

Every op is a pair: forward returns (out, cache), backward turns the
upstream gradient and the cache into gradients. Chaining them by hand is a
whole network; checking one against centred differences is one call.
"""

import numpy as np

from numcnn import ops
from numcnn.gradcheck import check_op, rel_error


def main(argv=None) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 8, 8))  # 4 RGB images, 8x8
    y = rng.integers(0, 10, size=4)  # their labels
    w1, b1 = 0.1 * rng.standard_normal((6, 3, 3, 3)), np.zeros(6)
    w2, b2 = 0.1 * rng.standard_normal((6 * 4 * 4, 10)), np.zeros(10)

    # forward: conv -> relu -> 2x2 max pool -> linear -> softmax loss
    a, conv_cache = ops.conv2d_forward(x, w1, b1, stride=1, pad=1)
    r, relu_cache = ops.relu_forward(a)
    p, pool_cache = ops.max_pool2d_forward(r, kernel_size=2)
    scores, linear_cache = ops.linear_forward(p, w2, b2)
    loss, dscores = ops.softmax_loss(scores, y)

    # backward: the same chain, reversed
    dp, dw2, db2 = ops.linear_backward(dscores, linear_cache)
    dr = ops.max_pool2d_backward(dp, pool_cache)
    da = ops.relu_backward(dr, relu_cache)
    dx, dw1, db1 = ops.conv2d_backward(da, conv_cache)
    print(f"loss {loss:.4f} (log 10 = {np.log(10):.4f}); dw1 {dw1.shape}, dw2 {dw2.shape}")

    # the loop version computes the same thing, one output pixel at a time
    a_naive, _ = ops.conv2d_forward_naive(x, w1, b1, stride=1, pad=1)
    print(f"conv fast vs naive: rel_error {rel_error(a, a_naive):.1e}")

    # analytic against numerical gradients, every input of an op in one call
    errors = check_op(ops.conv2d_forward, ops.conv2d_backward, x[:2], w1, b1, stride=2, pad=1)
    print("conv2d gradient check:", {name: f"{e:.1e}" for name, e in errors.items()})


if __name__ == "__main__":
    main()

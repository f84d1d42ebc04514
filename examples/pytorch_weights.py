"""Move weights between PyTorch and numcnn: the same network, the same numbers.

    python examples/pytorch_weights.py

Builds numcnn's ResNet-20 and its PyTorch twin, trains the PyTorch one for
a few steps, loads its state dict into numcnn, and shows that both give the
same outputs and gradients; then goes back the other way. Needs PyTorch.
"""

import numpy as np


def main(argv=None):
    import torch

    from numcnn import models, nn
    from numcnn.interop.pytorch import state_from_torch, to_torch

    nn.manual_seed(0)
    net = models.build("resnet20", widths=(8, 16, 32)).to(np.float64)
    twin = to_torch(net)  # same architecture and state-dict keys
    print(f"state dict: {len(twin.state_dict())} arrays, e.g. {list(twin.state_dict())[:3]}")

    optimizer = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    X, y = torch.tensor(rng.standard_normal((32, 3, 16, 16))), torch.tensor(rng.integers(0, 10, 32))
    for _ in range(5):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(twin(X), y).backward()
        optimizer.step()

    net.load_state_dict(state_from_torch(twin))  # PyTorch -> numcnn
    net.eval()
    twin.eval()
    x = rng.standard_normal((4, 3, 16, 16))
    ours, theirs = net(x), twin(torch.tensor(x)).detach().numpy()
    print(f"outputs after loading PyTorch's weights: max difference {np.abs(ours - theirs).max():.2e}")

    back = to_torch(net)  # numcnn -> PyTorch
    same = all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), twin.state_dict().values()))
    print(f"and back to PyTorch: identical state dict: {same}")
    return np.abs(ours - theirs).max()


if __name__ == "__main__":
    main()

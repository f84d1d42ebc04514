"""Speed of numcnn's ops against their loop versions and torch.nn.functional (see numcnn.bench.ops).

python benchmarks/bench_ops.py [--repeat 7] [--no-naive] [--threads 2]
"""

from numcnn.bench.ops import main

if __name__ == "__main__":
    raise SystemExit(main())

"""Training throughput and peak memory against PyTorch (see numcnn.bench.train).

python benchmarks/bench_train.py [--steps 8] [--models threelayer resnet20 airbench]
"""

from numcnn.bench.train import main

if __name__ == "__main__":
    raise SystemExit(main())

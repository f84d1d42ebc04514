"""Where a training step spends its time (see numcnn.bench.profile).

python benchmarks/profile_step.py [--models resnet20 airbench] [--steps 3]
"""

from numcnn.bench.profile import main

if __name__ == "__main__":
    raise SystemExit(main())

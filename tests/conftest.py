import sys
from pathlib import Path

from hypothesis import settings

# tests import their helpers as a plain module
sys.path.insert(0, str(Path(__file__).parent))

# Randomized comparisons: enough examples to cover the hyper-parameter
# space, no per-example deadline (the loop versions are slow by design).
settings.register_profile("default", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile("default")

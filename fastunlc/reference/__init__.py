"""Plain reference implementations (oracles) of every uNLC stage.

Each function follows ``shared/unlc-spec.md`` line by line with NumPy, SciPy and
scikit-image, favouring obviousness over speed (dense matrices, Python loops).
Tests and benchmarks compare the fast stages against these; the fast path never
imports this package.
"""

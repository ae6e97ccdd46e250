"""Compiled kernels (Numba). Private: call them through the stage modules."""

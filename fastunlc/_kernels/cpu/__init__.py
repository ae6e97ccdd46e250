"""The CPU backend's kernels: thin modules over the C++ of ``csrc/`` (``fastunlc._C``, OpenMP,
parallel over frames or superpixels).

One module per stage, named as :class:`fastunlc.backend.Kernels`'s attributes; a CUDA
backend's modules sit beside these under the same names with the same out-array
contracts. Private: stage modules reach them through :func:`fastunlc.backend.kernels`.
"""

"""The CUDA backend's kernels (Numba CUDA), each batched over the frames of a whole shot.

One module per stage, named as :class:`fastunlc.backend.Kernels`'s attributes. Their
functions take and return device arrays (Numba's, or anything with the CUDA array
interface, such as a torch CUDA tensor) so that a shot stays on the GPU from frames to
masks; every launch goes to the ``stream`` the caller passes, so several shots can be in
flight at once. Private: stage modules reach them through :func:`fastunlc.backend.kernels`.
"""

"""Compiled kernels, one subpackage per backend (``cpu``). Private: stage modules reach
them through :func:`fastunlc.backend.kernels`, never by importing them."""

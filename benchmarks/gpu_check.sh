#!/bin/bash
# The CUDA backend's checks on a machine with an NVIDIA GPU, in one go (about 10 min):
# install, the CUDA kernel tests on the real GPU (no simulator), the ground-truth and
# real-video tests with device="cuda", then benchmarks/gpu_throughput.py.
#   bash benchmarks/gpu_check.sh [OUT_DIR]
set -u
out=${1:-gpu-check}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -m venv .venv-gpu && . .venv-gpu/bin/activate
pip install -q -e ".[test,gpu]" scikit-build-core pybind11 2>&1 | grep -v WARNING | tail -3
export NUMBA_ENABLE_CUDASIM=0
python -m pytest -q tests/test_backend.py tests/test_cuda_*.py 2>&1 | tee "$out/cuda_tests.txt" | tail -5
FASTUNLC_TEST_DEVICE=cuda python -m pytest -q tests/test_groundtruth.py tests/test_real_videos.py \
    2>&1 | tee "$out/device_tests.txt" | tail -5
python benchmarks/gpu_throughput.py --out "$out/gpu_throughput.json" 2>&1 | tee "$out/gpu_throughput.md"

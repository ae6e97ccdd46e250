// fastunlc._C: the compiled kernels. Each family registers its own functions
// (csrc/<family>/binding.cpp, declared in bindings.h).
#include "bindings.h"

PYBIND11_MODULE(_C, m) {
    m.doc() = "Compiled kernels of fastunlc (private: use the stage modules).";
    fastunlc::register_flow(m);
    fastunlc::register_descriptors(m);
}

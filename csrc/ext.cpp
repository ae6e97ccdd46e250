// fastunlc._C: the compiled kernels. Each family registers its own functions
// (csrc/<family>/binding.cpp, declared in bindings.h).
#include <omp.h>

#include <string>

#include "bindings.h"

PYBIND11_MODULE(_C, m) {
    m.doc() = "Compiled kernels of fastunlc (private: use the stage modules).";
    m.def("max_threads", &omp_get_max_threads,
          R"doc(Threads an OpenMP parallel region of fastunlc._C started from this thread uses
(omp_get_max_threads: the last set_max_threads, else OMP_NUM_THREADS when set before the
extension loaded, else one per available core).)doc");
    m.def(
        "set_max_threads",
        [](int n) {
            if (n < 1) throw pybind11::value_error("threads must be >= 1, got " + std::to_string(n));
            omp_set_num_threads(n);
        },
        pybind11::arg("n"),
        R"doc(Use n (>= 1) threads in the parallel regions of fastunlc._C started from the
calling thread from now on (omp_set_num_threads).)doc");
    fastunlc::register_flow(m);
    fastunlc::register_shots(m);
    fastunlc::register_slic(m);
    fastunlc::register_regions(m);
    fastunlc::register_colour(m);
    fastunlc::register_descriptors(m);
    fastunlc::register_graph(m);
}

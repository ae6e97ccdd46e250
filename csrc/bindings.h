// Shared by the binding files of fastunlc._C: each kernel family has a csrc/<family>/binding.cpp
// whose register_<family>(module) adds its functions; argument checks and NumPy conversion
// live there, the kernels beside it know nothing of Python.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace fastunlc {

namespace py = pybind11;

inline std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string dtype_of(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

void register_flow(py::module_& m);
void register_shots(py::module_& m);
void register_slic(py::module_& m);
void register_regions(py::module_& m);
void register_colour(py::module_& m);
void register_descriptors(py::module_& m);
void register_graph(py::module_& m);

}  // namespace fastunlc

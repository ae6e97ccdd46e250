// Bindings of the colour kernels (csrc/colour/).
#include <cstdint>
#include <cstring>
#include <vector>

#include "bindings.h"
#include "colour/colour.h"

namespace fastunlc {

namespace {

py::tuple distinct_colours(const py::array& rgb_in) {
    if (!rgb_in.dtype().is(py::dtype::of<uint8_t>()) || rgb_in.ndim() != 2 || rgb_in.shape(1) != 3)
        throw py::value_error("rgb must be uint8 (n, 3), got " + dtype_of(rgb_in) + " " +
                              shape_of(rgb_in));
    if (rgb_in.shape(0) > INT32_MAX)
        throw py::value_error("rgb has more pixels than int32 indices hold: " + shape_of(rgb_in));
    const auto rgb = py::array_t<uint8_t, py::array::c_style>::ensure(rgb_in);
    const int64_t n = rgb.shape(0);
    py::array_t<int32_t> inverse(n);
    std::vector<uint8_t> colours;
    std::vector<int64_t> counts;
    {
        py::gil_scoped_release release;
        colour::distinct_colours(rgb.data(), n, colours, inverse.mutable_data(), counts);
    }
    const auto k = static_cast<py::ssize_t>(counts.size());
    py::array_t<uint8_t> colours_out({k, py::ssize_t{3}});
    py::array_t<int64_t> counts_out(k);
    std::memcpy(colours_out.mutable_data(), colours.data(), colours.size());
    std::memcpy(counts_out.mutable_data(), counts.data(), counts.size() * sizeof(int64_t));
    return py::make_tuple(colours_out, inverse, counts_out);
}

}  // namespace

void register_colour(py::module_& m) {
    py::module_ c = m.def_submodule("colour", "Colour kernels (see fastunlc._kernels.cpu.colour).");
    c.def("distinct_colours", &distinct_colours, py::arg("rgb"),
          R"doc(Distinct colours of rgb, uint8 (n, 3), in order of first appearance.

Returns (colours, inverse, counts): colours uint8 (k, 3), inverse int32 (n,) with
colours[inverse] == rgb, counts int64 (k,) the pixels of each colour. Linear in n.)doc");
}

}  // namespace fastunlc

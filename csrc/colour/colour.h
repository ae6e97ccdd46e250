// Distinct colours of an RGB image (fastunlc.colour converts each to CIELAB once).
#pragma once

#include <cstdint>
#include <vector>

namespace fastunlc::colour {

// The distinct colours of rgb (n x 3 uint8, row-major) in order of first appearance:
// colours (k x 3), inverse (n,) with colours[inverse[i]] == rgb[i], counts (k,) pixels of
// each. Linear in n: an open-addressing hash table of at least 2n slots.
void distinct_colours(const uint8_t* rgb, int64_t n, std::vector<uint8_t>& colours,
                      int32_t* inverse, std::vector<int64_t>& counts);

}  // namespace fastunlc::colour

#include "colour/colour.h"

namespace fastunlc::colour {

void distinct_colours(const uint8_t* rgb, int64_t n, std::vector<uint8_t>& colours,
                      int32_t* inverse, std::vector<int64_t>& counts) {
    int bits = 1;
    while ((int64_t{1} << bits) < 2 * (n > 1 ? n : 1)) ++bits;
    const uint32_t mask = (uint32_t{1} << bits) - 1;
    // A slot holds the colour's 24-bit code and its index, -1 when empty.
    std::vector<int64_t> slots(std::size_t{1} << bits, -1);
    // Sized for n distinct colours, trimmed at the end: no reallocation in the loop.
    colours.resize(3 * static_cast<std::size_t>(n));
    counts.resize(static_cast<std::size_t>(n));
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) {
        const uint8_t* px = rgb + 3 * i;
        const uint32_t code = (uint32_t{px[0]} << 16) | (uint32_t{px[1]} << 8) | px[2];
        uint32_t s = static_cast<uint32_t>((code * 2654435761u) >> (32 - bits)) & mask;  // Knuth
        while (true) {
            const int64_t slot = slots[s];
            if (slot < 0) {
                slots[s] = (k << 24) | code;
                for (int c = 0; c < 3; ++c) colours[3 * k + c] = px[c];
                counts[k] = 1;
                inverse[i] = static_cast<int32_t>(k++);
                break;
            }
            if ((slot & 0xFFFFFF) == code) {
                inverse[i] = static_cast<int32_t>(slot >> 24);
                ++counts[slot >> 24];
                break;
            }
            s = (s + 1) & mask;
        }
    }
    colours.resize(3 * static_cast<std::size_t>(k));
    counts.resize(static_cast<std::size_t>(k));
}

}  // namespace fastunlc::colour

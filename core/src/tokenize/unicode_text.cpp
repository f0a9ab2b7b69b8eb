#include "tokenize/unicode_text.h"

#include <algorithm>

namespace cloq::unicode {

bool decode_utf8(std::string_view s, std::size_t pos, char32_t& cp, std::size_t& len) {
    const auto b0 = static_cast<unsigned char>(s[pos]);
    const std::size_t avail = s.size() - pos;
    auto cont = [&](std::size_t i) { return (static_cast<unsigned char>(s[pos + i]) & 0xC0) == 0x80; };
    auto bits = [&](std::size_t i) { return static_cast<char32_t>(static_cast<unsigned char>(s[pos + i]) & 0x3F); };
    len = 1;
    if (b0 < 0x80) {
        cp = b0;
        return true;
    }
    if ((b0 & 0xE0) == 0xC0 && avail >= 2 && cont(1)) {
        cp = (static_cast<char32_t>(b0 & 0x1F) << 6) | bits(1);
        if (cp >= 0x80) {
            len = 2;
            return true;
        }
    } else if ((b0 & 0xF0) == 0xE0 && avail >= 3 && cont(1) && cont(2)) {
        cp = (static_cast<char32_t>(b0 & 0x0F) << 12) | (bits(1) << 6) | bits(2);
        if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
            len = 3;
            return true;
        }
    } else if ((b0 & 0xF8) == 0xF0 && avail >= 4 && cont(1) && cont(2) && cont(3)) {
        cp = (static_cast<char32_t>(b0 & 0x07) << 18) | (bits(1) << 12) | (bits(2) << 6) | bits(3);
        if (cp >= 0x10000 && cp <= 0x10FFFF) {
            len = 4;
            return true;
        }
    }
    cp = kReplacementChar;
    return false;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::string to_valid_utf8_lossy(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    std::size_t i = 0;
    while (i < bytes.size()) {
        char32_t cp;
        std::size_t len;
        if (decode_utf8(bytes, i, cp, len)) {
            out.append(bytes.data() + i, len);
            i += len;
            continue;
        }
        // Length of the maximal subpart: the lead byte plus the continuation bytes that could still have
        // completed a well-formed sequence (Unicode 3.9, table 3-7 ranges for the second byte).
        const auto b0 = static_cast<unsigned char>(bytes[i]);
        std::size_t need = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (b0 >= 0xC2 && b0 <= 0xDF)
            need = 1;
        else if (b0 >= 0xE0 && b0 <= 0xEF) {
            need = 2;
            if (b0 == 0xE0) lo = 0xA0;
            if (b0 == 0xED) hi = 0x9F;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            need = 3;
            if (b0 == 0xF0) lo = 0x90;
            if (b0 == 0xF4) hi = 0x8F;
        }
        std::size_t j = i + 1;
        for (std::size_t k = 0; k < need && j < bytes.size(); ++k, ++j) {
            const auto b = static_cast<unsigned char>(bytes[j]);
            if (k == 0 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) break;
        }
        append_utf8(out, kReplacementChar);
        i = j;
    }
    return out;
}

namespace {
bool in_ranges(const CodepointRange* r, std::size_t n, char32_t cp) {
    const auto* end = r + n;
    const auto* it = std::upper_bound(r, end, cp, [](char32_t c, const CodepointRange& x) { return c < x.first; });
    return it != r && cp <= (it - 1)->last;
}
}  // namespace

bool is_letter(char32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(kLetterRanges, kLetterRanges_count, cp);
}

bool is_number(char32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return in_ranges(kNumberRanges, kNumberRanges_count, cp);
}

bool is_whitespace(char32_t cp) {
    switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

}  // namespace cloq::unicode

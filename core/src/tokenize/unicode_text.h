// UTF-8 and Unicode-category helpers shared by the tokenizers (internal to cloq_core).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cloq::unicode {

struct CodepointRange {
    char32_t first, last;  // inclusive
};
extern const CodepointRange kLetterRanges[];
extern const std::size_t kLetterRanges_count;
extern const CodepointRange kNumberRanges[];
extern const std::size_t kNumberRanges_count;

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes the well-formed UTF-8 sequence starting at s[pos] (no overlong forms, no surrogates, at most U+10FFFF).
// Returns false for an ill-formed sequence; `len` is then 1. pos must be < s.size().
bool decode_utf8(std::string_view s, std::size_t pos, char32_t& cp, std::size_t& len);

void append_utf8(std::string& out, char32_t cp);

// Byte length of the UTF-8 sequence a lead byte announces (1 for continuation/invalid bytes), as SentencePiece counts.
inline std::size_t utf8_lead_length(unsigned char b) {
    static constexpr unsigned char kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLen[b >> 4];
}

// `bytes` as valid UTF-8: every maximal ill-formed subpart becomes one U+FFFD (the Unicode "best practice" that
// Rust's String::from_utf8_lossy, and so HF tokenizers' decoders, follow).
std::string to_valid_utf8_lossy(std::string_view bytes);

// Regex classes of the pre-tokenizers: \p{L}, \p{N} and \s (the White_Space property).
bool is_letter(char32_t cp);
bool is_number(char32_t cp);
bool is_whitespace(char32_t cp);

}  // namespace cloq::unicode

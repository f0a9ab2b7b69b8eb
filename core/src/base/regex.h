// Module-selecting regular expressions. Those that come from files or the command line (profile overrides, a
// checkpoint's "dynamic" keys, an adapter's rank_pattern, --layers) are hostile input, so they are compiled in one
// place with the guards that libstdc++'s std::regex needs (see regex.cpp); those we write select exact names.
#pragma once
#include <regex>
#include <string>

namespace cloq {

// Compiles `pattern` (ECMAScript) or throws cloq::Error "<where>: pattern '...' ..." naming the problem. Patterns
// longer than `max_length` are refused (a profile's selectors stay short; a checkpoint's generated alternation of
// every skipped module of a large model does not).
constexpr size_t kMaxGeneratedPatternLength = size_t(1) << 16;
std::regex compile_untrusted_regex(const std::string& pattern, const std::string& where,
                                   size_t max_length = kMaxGeneratedPatternLength);

// `s` with every regex metacharacter escaped, so that it matches itself (module names have dots).
std::string regex_escape(const std::string& s);

}  // namespace cloq

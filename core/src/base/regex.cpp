#include "base/regex.h"

#include <algorithm>
#include <vector>

#include "cloq/base/error.h"

namespace cloq {

namespace {
// libstdc++ compiles recursively (one level per nested group, and per term within an alternative) and backtracks
// recursively: a pattern of 30000 nested groups overflowed the stack and "(.*)*(.*)*x" backtracks exponentially
// (fuzz_profile). So group nesting and the length of each alternative are capped (module names are short; a
// checkpoint's list of every skipped module is a long alternation of short names), and patterns are matched in
// libstdc++'s polynomial (Thompson NFA) mode, which has no backtracking (it refuses back-references at compile time;
// its state limit bounds memory for x{1000}{1000}).
constexpr size_t kMaxAlternativeLength = 512;
constexpr int kMaxGroupDepth = 32;
// libstdc++ accumulates a repeat count ("x{N}") or back-reference number ("\N") in a long without an overflow check
// (signed overflow, undefined behaviour: fuzz_profile found "{1006666666666666666}"), so long numbers in those places
// are refused before the pattern reaches it. No module selector needs a count of five digits.
constexpr size_t kMaxCountDigits = 4;

size_t digit_run(const std::string& p, size_t i) {
    size_t n = 0;
    while (i + n < p.size() && p[i + n] >= '0' && p[i + n] <= '9') ++n;
    return n;
}

// The first over-long count in a "{...}" repeat or after a backslash, or npos. Inside a bracket class "{" is a
// literal, but refusing a long number there too is harmless, so classes are not tracked.
size_t overlong_count(const std::string& p) {
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] == '\\') {
            if (digit_run(p, i + 1) > kMaxCountDigits) return i + 1;
            ++i;  // the escaped character is a literal, "\{" included
        } else if (p[i] == '{' || p[i] == ',') {
            if (digit_run(p, i + 1) > kMaxCountDigits) return i + 1;
        }
    }
    return std::string::npos;
}

// The deepest group nesting and the longest alternative (characters between "|" or group bounds) of `p`.
void shape_of(const std::string& p, int& depth, size_t& longest) {
    depth = 0;
    longest = 0;
    std::vector<size_t> run{0};  // characters of the current alternative at each open group level
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        const char c = p[i];
        longest = std::max(longest, ++run.back());
        if (c == '\\') {
            ++i;
        } else if (in_class) {
            if (c == ']') in_class = false;
        } else if (c == '[') {
            in_class = true;
        } else if (c == '(') {
            run.push_back(0);
            depth = std::max(depth, static_cast<int>(run.size()) - 1);
        } else if (c == ')') {
            if (run.size() > 1) run.pop_back();
        } else if (c == '|') {
            run.back() = 0;
        }
    }
}
}  // namespace

std::regex compile_untrusted_regex(const std::string& pattern, const std::string& where, size_t max_length) {
    if (pattern.size() > max_length)
        throw Error(where + ": pattern is " + std::to_string(pattern.size()) + " characters long (at most " +
                    std::to_string(max_length) + ")");
    int depth = 0;
    size_t longest = 0;
    shape_of(pattern, depth, longest);
    if (depth > kMaxGroupDepth)
        throw Error(where + ": pattern nests groups " + std::to_string(depth) + " deep (at most " +
                    std::to_string(kMaxGroupDepth) + ")");
    if (longest > kMaxAlternativeLength)
        throw Error(where + ": pattern has an alternative " + std::to_string(longest) + " characters long (at most " +
                    std::to_string(kMaxAlternativeLength) + " between '|')");
    if (const size_t at = overlong_count(pattern); at != std::string::npos)
        throw Error(where + ": pattern '" + pattern + "' is not a valid regular expression (the count at character " +
                    std::to_string(at + 1) + " has more than " + std::to_string(kMaxCountDigits) + " digits)");
    auto flags = std::regex::ECMAScript;
#ifdef __GLIBCXX__
    flags |= std::regex_constants::__polynomial;
#endif
    try {
        return std::regex(pattern, flags);
    } catch (const std::regex_error& e) {
        throw Error(where + ": pattern '" + pattern + "' is not a valid regular expression (" + e.what() + ")");
    }
}

std::string regex_escape(const std::string& s) {
    static const std::string special = R"(\^$.|?*+()[]{})";
    std::string out;
    for (char c : s) {
        if (special.find(c) != std::string::npos) out += '\\';
        out += c;
    }
    return out;
}

}  // namespace cloq

// Benchmarks keep their results in generated sections of hand-written markdown files (docs/benchmarks.md,
// README.md): the text between `<!-- NAME -->` and `<!-- /NAME -->` is replaced, or the section appended once.
#pragma once
#include <fstream>
#include <iterator>
#include <string>

#include "cloq/base/atomic_file.h"

namespace cloq::bench {

inline void write_markdown_section(const std::string& path, const std::string& name, const std::string& body) {
    const std::string open = "<!-- " + name + " -->", close = "<!-- /" + name + " -->";
    std::string doc;
    if (std::ifstream f(path); f) doc.assign(std::istreambuf_iterator<char>(f), {});
    if (doc.empty()) doc = "# Benchmarks\n\n";
    const auto a = doc.find(open), b = doc.find(close);
    const std::string section = open + "\n" + body + close;
    if (a != std::string::npos && b != std::string::npos && b > a)
        doc.replace(a, b + close.size() - a, section);
    else
        doc += "\n" + section + "\n";
    write_file_atomic(path, doc);
}

}  // namespace cloq::bench

#include "cloq/io/npy.h"

#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"

namespace cloq {

namespace {

// numpy refuses headers above 10 000 bytes by default (max_header_size); we allow more for huge shapes but still
// bound it so a corrupt length can never make us read or allocate gigabytes.
constexpr uint64_t kMaxHeaderLen = 1u << 20;

[[noreturn]] void fail(const std::string& file, const std::string& what) { throw Error(file + ": " + what); }

// A tiny parser for the Python dict literal numpy writes: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class DictParser {
public:
    DictParser(std::string_view s, const std::string& file) : s_(s), file_(file) {}

    void skip_ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool peek(char c) {
        skip_ws();
        return i_ < s_.size() && s_[i_] == c;
    }
    void expect(char c, const char* where) {
        if (!peek(c)) fail(file_, std::string("malformed .npy header: expected '") + c + "' " + where);
        ++i_;
    }
    std::string string_literal() {
        skip_ws();
        if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"'))
            fail(file_, "malformed .npy header: expected a quoted string");
        const char q = s_[i_++];
        std::string out;
        while (i_ < s_.size() && s_[i_] != q) {
            if (s_[i_] == '\\' || static_cast<unsigned char>(s_[i_]) < 0x20)
                fail(file_, "malformed .npy header: unsupported character in a string");
            out += s_[i_++];
        }
        if (i_ >= s_.size()) fail(file_, "malformed .npy header: unterminated string");
        ++i_;
        return out;
    }
    bool boolean() {
        skip_ws();
        if (s_.substr(i_, 4) == "True") {
            i_ += 4;
            return true;
        }
        if (s_.substr(i_, 5) == "False") {
            i_ += 5;
            return false;
        }
        fail(file_, "malformed .npy header: fortran_order must be True or False");
    }
    int64_t integer() {
        skip_ws();
        const size_t start = i_;
        uint64_t v = 0;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
            const uint64_t d = static_cast<uint64_t>(s_[i_] - '0');
            if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10)
                fail(file_, "malformed .npy header: a dimension is too large");
            v = v * 10 + d;
            ++i_;
        }
        if (i_ == start) fail(file_, "malformed .npy header: shape must hold non-negative integers");
        if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long suffix, still written by old numpy
        return static_cast<int64_t>(v);
    }
    std::vector<int64_t> shape_tuple() {
        expect('(', "to open the shape tuple");
        std::vector<int64_t> shape;
        if (peek(')')) {
            ++i_;
            return shape;
        }
        while (true) {
            shape.push_back(integer());
            if (shape.size() > 32) fail(file_, "malformed .npy header: more than 32 dimensions");
            if (peek(',')) {
                ++i_;
                if (peek(')')) {
                    ++i_;
                    break;
                }
                continue;
            }
            expect(')', "to close the shape tuple");
            break;
        }
        return shape;
    }
    bool at_end() {
        skip_ws();
        return i_ == s_.size();
    }

private:
    std::string_view s_;
    const std::string& file_;
    size_t i_ = 0;
};

uint64_t read_le(const unsigned char* p, int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
    return v;
}

torch::ScalarType scalar_type(const NpyHeader& h) {
    switch (h.kind) {
    case 'f':
        return h.itemsize == 2 ? torch::kHalf : h.itemsize == 4 ? torch::kFloat32 : torch::kFloat64;
    case 'i':
        return h.itemsize == 4 ? torch::kInt32 : torch::kInt64;
    case 'u':
        return torch::kUInt8;
    default:
        return torch::kBool;
    }
}

}  // namespace

NpyHeader parse_npy_header(std::string_view bytes, const std::string& file, int64_t file_size) {
    static const char kMagic[] = "\x93NUMPY";
    if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0)
        fail(file, "not a .npy file (missing the \\x93NUMPY magic)");
    const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
    const int major = u[6], minor = u[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        fail(file, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                       " (1.0, 2.0 and 3.0 are supported)");
    const int len_bytes = major == 1 ? 2 : 4;
    const uint64_t prefix = 8 + static_cast<uint64_t>(len_bytes);
    if (bytes.size() < prefix) fail(file, "truncated .npy header");
    const uint64_t header_len = read_le(u + 8, len_bytes);
    if (header_len == 0 || header_len > kMaxHeaderLen)
        fail(file, "invalid .npy header length " + std::to_string(header_len));
    if (bytes.size() < prefix + header_len) fail(file, "truncated .npy header (file ends inside the header)");
    std::string_view header(bytes.data() + prefix, header_len);
    if (header.back() != '\n') fail(file, "malformed .npy header: it must end with a newline");
    for (const char c : header)
        if (static_cast<unsigned char>(c) >= 0x80 && major < 3)
            fail(file, "malformed .npy header: non-ASCII bytes in a version 1/2 header");

    DictParser p(header, file);
    p.expect('{', "at the start of the header dict");
    bool have_descr = false, have_fortran = false, have_shape = false, fortran = false;
    std::string descr;
    NpyHeader h;
    while (!p.peek('}')) {
        const std::string key = p.string_literal();
        p.expect(':', "after a key");
        if (key == "descr") {
            if (have_descr) fail(file, "malformed .npy header: duplicate key 'descr'");
            descr = p.string_literal();
            have_descr = true;
        } else if (key == "fortran_order") {
            if (have_fortran) fail(file, "malformed .npy header: duplicate key 'fortran_order'");
            fortran = p.boolean();
            have_fortran = true;
        } else if (key == "shape") {
            if (have_shape) fail(file, "malformed .npy header: duplicate key 'shape'");
            h.shape = p.shape_tuple();
            have_shape = true;
        } else {
            fail(file, "malformed .npy header: unexpected key '" + key + "'");
        }
        if (p.peek(',')) {
            p.expect(',', "");
            continue;
        }
        if (!p.peek('}')) fail(file, "malformed .npy header: expected ',' or '}' after a value");
    }
    p.expect('}', "at the end of the header dict");
    if (!p.at_end()) fail(file, "malformed .npy header: unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        fail(file, std::string("malformed .npy header: missing key '") +
                       (!have_descr     ? "descr"
                        : !have_fortran ? "fortran_order"
                                        : "shape") +
                       "'");
    if (fortran)
        fail(file, "Fortran-ordered arrays are not supported; save the array in C order (np.ascontiguousarray)");

    // descr: byte order + kind + size, e.g. '<f4'. Big-endian data would need swapping; numpy on every platform we
    // target writes little-endian, so refusing it is clearer than silently converting.
    if (descr.size() < 3) fail(file, "unsupported dtype '" + descr + "'");
    const char order = descr[0];
    h.kind = descr[1];
    const std::string size_txt = descr.substr(2);
    if (size_txt != "1" && size_txt != "2" && size_txt != "4" && size_txt != "8")
        fail(file, "unsupported dtype '" + descr + "'");
    h.itemsize = std::stoi(size_txt);
    const bool supported = (h.kind == 'f' && h.itemsize >= 2) || (h.kind == 'i' && h.itemsize >= 4) ||
                           ((h.kind == 'u' || h.kind == 'b') && h.itemsize == 1);
    if (!supported) fail(file, "unsupported dtype '" + descr + "' (use float16/32/64, int32/64, uint8 or bool)");
    if (order == '>') fail(file, "big-endian data ('" + descr + "') is not supported; save it little-endian");
    if (order != '<' && order != '|' && order != '=') fail(file, "unsupported dtype '" + descr + "'");
    if (order == '|' && h.itemsize != 1) fail(file, "unsupported dtype '" + descr + "' (no byte order given)");

    uint64_t count = 1;
    for (const int64_t d : h.shape) {
        if (d != 0 && count > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
            fail(file, "array shape is too large");
        count *= static_cast<uint64_t>(d);
    }
    if (count > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(h.itemsize))
        fail(file, "array shape is too large");
    h.data_offset = prefix + header_len;
    h.data_bytes = count * static_cast<uint64_t>(h.itemsize);
    if (file_size >= 0) {
        const uint64_t have = static_cast<uint64_t>(file_size) - std::min<uint64_t>(file_size, h.data_offset);
        if (have != h.data_bytes)
            fail(file, "data size mismatch: the header's shape and dtype need " + std::to_string(h.data_bytes) +
                           " bytes, the file has " + std::to_string(have) +
                           (have < h.data_bytes ? " (truncated)" : ""));
    }
    return h;
}

torch::Tensor read_npy(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) fail(path, "is a folder, not a .npy file");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
    in.seekg(0, std::ios::end);
    const int64_t size = static_cast<int64_t>(in.tellg());
    in.seekg(0);
    // The header fits in the first 12 + kMaxHeaderLen bytes.
    std::string head(static_cast<size_t>(std::min<int64_t>(size, 12 + kMaxHeaderLen)), '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (!in) fail(path, "read error");
    const NpyHeader h = parse_npy_header(head, path, size);
    auto t = torch::empty(h.shape, torch::TensorOptions().dtype(scalar_type(h)));
    in.seekg(static_cast<std::streamoff>(h.data_offset));
    if (h.data_bytes > 0) {
        in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(h.data_bytes));
        if (!in) fail(path, "read error in the data");
    }
    if (h.kind == 'b') {  // only 0/1 are valid bool bytes; anything else is undefined behaviour in a bool tensor
        const auto* b = static_cast<const unsigned char*>(t.data_ptr());
        for (uint64_t i = 0; i < h.data_bytes; ++i)
            if (b[i] > 1) fail(path, "invalid bool value in the data");
    }
    return t;
}

void write_npy(const std::string& path, const torch::Tensor& t_in) {
    if (!t_in.defined()) throw Error(path + ": cannot write an undefined tensor");
    const auto t = t_in.detach().to(torch::kCPU).contiguous();
    std::string descr;
    switch (t.scalar_type()) {
    case torch::kHalf:
        descr = "<f2";
        break;
    case torch::kFloat32:
        descr = "<f4";
        break;
    case torch::kFloat64:
        descr = "<f8";
        break;
    case torch::kInt32:
        descr = "<i4";
        break;
    case torch::kInt64:
        descr = "<i8";
        break;
    case torch::kUInt8:
        descr = "|u1";
        break;
    case torch::kBool:
        descr = "|b1";
        break;
    default:
        throw Error(path + ": cannot write dtype " + std::string(c10::toString(t.scalar_type())) + " as .npy");
    }
    std::string shape;
    for (int64_t d = 0; d < t.dim(); ++d) shape += (d ? ", " : "") + std::to_string(t.size(d));
    shape = "(" + shape + (t.dim() == 1 ? ",)" : ")");  // numpy's tuple spelling: (), (5,), (3, 4)
    std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    // Pad with spaces so that the data starts at a multiple of 64 bytes, as numpy does.
    size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::string prefix("\x93NUMPY\x01\x00", 8);
    if (header.size() > 0xFFFF) throw Error(path + ": array has too many dimensions for a .npy header");
    prefix += static_cast<char>(header.size() & 0xFF);
    prefix += static_cast<char>(header.size() >> 8);
    AtomicFile f(path);
    f.write(prefix + header);
    f.write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
    f.commit();
}

}  // namespace cloq

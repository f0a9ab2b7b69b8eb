// GGUF reader: memory mapping, a bounds-checked cursor over the header, and validation of every count, string and
// tensor span before anything is allocated or dereferenced (the file may be hostile: it is fuzzed).
#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <sstream>

#include "cloq/base/error.h"

namespace cloq {

namespace {

constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 8;  // nested arrays deeper than this are rejected (no recursion bomb)
constexpr uint32_t kMaxDims = 4;   // GGML_MAX_DIMS

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_mul_overflow(a, b, &out); }
bool add_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_add_overflow(a, b, &out); }

// Size in bytes of a fixed-size scalar type, 0 for string/array.
uint64_t scalar_size(GgufValueType t) {
    switch (t) {
    case GgufValueType::Uint8:
    case GgufValueType::Int8:
    case GgufValueType::Bool:
        return 1;
    case GgufValueType::Uint16:
    case GgufValueType::Int16:
        return 2;
    case GgufValueType::Uint32:
    case GgufValueType::Int32:
    case GgufValueType::Float32:
        return 4;
    case GgufValueType::Uint64:
    case GgufValueType::Int64:
    case GgufValueType::Float64:
        return 8;
    default:
        return 0;
    }
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::Float64); }

// Smallest number of bytes one value of type `t` occupies in a file: bounds lying array counts before allocating.
uint64_t min_encoded_size(GgufValueType t) {
    if (t == GgufValueType::String) return 8;     // u64 length
    if (t == GgufValueType::Array) return 4 + 8;  // u32 type + u64 count
    return scalar_size(t);
}

int64_t decode_int(GgufValueType t, const uint8_t* p, bool& ok) {
    ok = true;
    switch (t) {
    case GgufValueType::Uint8:
        return *p;
    case GgufValueType::Int8:
        return static_cast<int8_t>(*p);
    case GgufValueType::Bool:
        return *p != 0;
    case GgufValueType::Uint16: {
        uint16_t v;
        std::memcpy(&v, p, 2);
        return v;
    }
    case GgufValueType::Int16: {
        int16_t v;
        std::memcpy(&v, p, 2);
        return v;
    }
    case GgufValueType::Uint32: {
        uint32_t v;
        std::memcpy(&v, p, 4);
        return v;
    }
    case GgufValueType::Int32: {
        int32_t v;
        std::memcpy(&v, p, 4);
        return v;
    }
    case GgufValueType::Int64: {
        int64_t v;
        std::memcpy(&v, p, 8);
        return v;
    }
    case GgufValueType::Uint64: {
        uint64_t v;
        std::memcpy(&v, p, 8);
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) ok = false;
        return static_cast<int64_t>(v);
    }
    default:
        ok = false;
        return 0;
    }
}

double decode_double(GgufValueType t, const uint8_t* p, bool& ok) {
    if (t == GgufValueType::Float32) {
        float v;
        std::memcpy(&v, p, 4);
        ok = true;
        return v;
    }
    if (t == GgufValueType::Float64) {
        double v;
        std::memcpy(&v, p, 8);
        ok = true;
        return v;
    }
    if (t == GgufValueType::Uint64) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        ok = true;
        return static_cast<double>(v);
    }
    const int64_t i = decode_int(t, p, ok);
    return static_cast<double>(i);
}

struct Mapping {
    void* addr = nullptr;
    size_t len = 0;
    ~Mapping() {
        if (addr) munmap(addr, len);
    }
};

}  // namespace

std::string to_string(GgufValueType t) {
    switch (t) {
    case GgufValueType::Uint8:
        return "uint8";
    case GgufValueType::Int8:
        return "int8";
    case GgufValueType::Uint16:
        return "uint16";
    case GgufValueType::Int16:
        return "int16";
    case GgufValueType::Uint32:
        return "uint32";
    case GgufValueType::Int32:
        return "int32";
    case GgufValueType::Float32:
        return "float32";
    case GgufValueType::Bool:
        return "bool";
    case GgufValueType::String:
        return "string";
    case GgufValueType::Array:
        return "array";
    case GgufValueType::Uint64:
        return "uint64";
    case GgufValueType::Int64:
        return "int64";
    case GgufValueType::Float64:
        return "float64";
    }
    return "type " + std::to_string(static_cast<uint32_t>(t));
}

// ---------------------------------------------------------------------------------------------- GgufValue

bool GgufValue::is_integer() const {
    switch (type_) {
    case GgufValueType::Uint8:
    case GgufValueType::Int8:
    case GgufValueType::Uint16:
    case GgufValueType::Int16:
    case GgufValueType::Uint32:
    case GgufValueType::Int32:
    case GgufValueType::Uint64:
    case GgufValueType::Int64:
        return true;
    default:
        return false;
    }
}

int64_t GgufValue::as_int() const {
    if (!is_integer()) throw Error("is " + to_string(type_) + ", expected an integer");
    bool ok = false;
    const int64_t v = decode_int(type_, reinterpret_cast<const uint8_t*>(&scalar_), ok);
    if (!ok) throw Error("holds " + std::to_string(scalar_) + ", which does not fit a signed 64-bit integer");
    return v;
}

double GgufValue::as_double() const {
    if (!is_integer() && !is_float()) throw Error("is " + to_string(type_) + ", expected a number");
    bool ok = false;
    return decode_double(type_, reinterpret_cast<const uint8_t*>(&scalar_), ok);
}

bool GgufValue::as_bool() const {
    if (type_ != GgufValueType::Bool) throw Error("is " + to_string(type_) + ", expected a bool");
    return scalar_ != 0;
}

const std::string& GgufValue::as_string() const {
    if (type_ != GgufValueType::String) throw Error("is " + to_string(type_) + ", expected a string");
    return str_;
}

int64_t GgufValue::int_at(uint64_t i) const {
    bool ok = false;
    const int64_t v = decode_int(elem_, raw_.data() + i * scalar_size(elem_), ok);
    if (!ok) throw Error("element " + std::to_string(i) + " does not fit a signed 64-bit integer");
    return v;
}

double GgufValue::double_at(uint64_t i) const {
    bool ok = false;
    return decode_double(elem_, raw_.data() + i * scalar_size(elem_), ok);
}

std::vector<int64_t> GgufValue::int_array() const {
    const bool int_elems = elem_ != GgufValueType::Float32 && elem_ != GgufValueType::Float64 && scalar_size(elem_) > 0;
    if (!is_array() || !int_elems) {
        throw Error("is " + (is_array() ? "an array of " + to_string(elem_) : to_string(type_)) +
                    ", expected an array of integers");
    }
    std::vector<int64_t> out(count_);
    for (uint64_t i = 0; i < count_; ++i) out[i] = int_at(i);
    return out;
}

std::vector<double> GgufValue::double_array() const {
    if (!is_array() || scalar_size(elem_) == 0) {
        throw Error("is " + (is_array() ? "an array of " + to_string(elem_) : to_string(type_)) +
                    ", expected an array of numbers");
    }
    std::vector<double> out(count_);
    for (uint64_t i = 0; i < count_; ++i) out[i] = double_at(i);
    return out;
}

const std::vector<std::string>& GgufValue::string_array() const {
    if (!is_array() || elem_ != GgufValueType::String) {
        throw Error("is " + (is_array() ? "an array of " + to_string(elem_) : to_string(type_)) +
                    ", expected an array of strings");
    }
    return strings_;
}

const std::vector<GgufValue>& GgufValue::nested_array() const {
    if (!is_array() || elem_ != GgufValueType::Array) {
        throw Error("is " + (is_array() ? "an array of " + to_string(elem_) : to_string(type_)) +
                    ", expected an array of arrays");
    }
    return nested_;
}

std::string GgufValue::summary() const {
    std::ostringstream s;
    if (is_array()) {
        s << "[" << to_string(elem_) << " x " << count_ << "]";
    } else if (type_ == GgufValueType::String) {
        std::string v = str_.size() > 60 ? str_.substr(0, 57) + "..." : str_;
        for (auto& c : v) {
            if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        }
        s << '"' << v << '"';
    } else if (type_ == GgufValueType::Bool) {
        s << (scalar_ ? "true" : "false");
    } else if (is_float()) {
        s << as_double();
    } else if (type_ == GgufValueType::Uint64) {
        s << scalar_;
    } else {
        s << as_int();
    }
    return s.str();
}

// ---------------------------------------------------------------------------------------------- parser

class GgufParser {
public:
    GgufParser(GgufFile& f) : f_(f), p_(f.base_), size_(f.size_) {}

    void parse() {
        if (size_ < 4) fail("is too small to be a GGUF file (" + std::to_string(size_) + " bytes)");
        if (std::memcmp(p_, "GGUF", 4) != 0) {
            std::string got;
            for (int i = 0; i < 4; ++i) {
                const unsigned char c = p_[i];
                got += (c >= 32 && c < 127) ? static_cast<char>(c) : '?';
            }
            fail("is not a GGUF file (starts with '" + got + "', expected the magic 'GGUF')");
        }
        pos_ = 4;
        const uint32_t version = read_u32("the version");
        if (version != 2 && version != 3) {
            const uint32_t swapped = __builtin_bswap32(version);
            if (swapped == 2 || swapped == 3) fail("is a big-endian GGUF file, which is not supported");
            if (version == 1) {
                fail(
                    "is GGUF version 1, which is not supported (supported: 2 and 3; re-convert it with a current "
                    "llama.cpp)");
            }
            fail("has unsupported GGUF version " + std::to_string(version) + " (supported: 2 and 3)");
        }
        f_.version_ = version;
        const uint64_t n_tensors = read_u64("the tensor count");
        const uint64_t n_kv = read_u64("the metadata count");
        // A key/value takes at least 13 bytes (u64 key length, u32 type, 1-byte value); a tensor info at least 32
        // (u64 name length, u32 n_dims, one u64 dim, u32 type, u64 offset).
        check_count(n_kv, 13, "metadata entries");
        f_.kv_.reserve(n_kv);
        for (uint64_t i = 0; i < n_kv; ++i) {
            std::string key = read_string("metadata key #" + std::to_string(i));
            const uint32_t t = read_u32("the type of metadata key '" + key + "'");
            if (!valid_value_type(t)) {
                fail("metadata key '" + key + "' has unknown value type " + std::to_string(t));
            }
            GgufValue v = read_value(static_cast<GgufValueType>(t), "metadata key '" + key + "'", 0);
            if (f_.kv_index_.count(key)) fail("has the metadata key '" + key + "' twice");
            f_.kv_index_.emplace(key, f_.kv_.size());
            f_.kv_.emplace_back(std::move(key), std::move(v));
        }
        read_alignment();

        check_count(n_tensors, 32, "tensor infos");
        f_.tensors_.reserve(n_tensors);
        for (uint64_t i = 0; i < n_tensors; ++i) f_.tensors_.push_back(read_tensor_info(i));

        uint64_t data_offset = 0;
        if (add_overflows(pos_, f_.alignment_ - 1, data_offset)) fail("has a header that overflows 64 bits");
        data_offset -= data_offset % f_.alignment_;
        f_.data_offset_ = data_offset;
        check_tensor_spans();
    }

private:
    GgufFile& f_;
    const uint8_t* p_;
    uint64_t size_;
    uint64_t pos_ = 0;

    [[noreturn]] void fail(const std::string& what) const { throw Error(f_.path_ + ": " + what); }

    void need(uint64_t n, const std::string& what) const {
        if (n > size_ - pos_) {
            fail("is truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                 " but the file has " + std::to_string(size_ - pos_) + " left");
        }
    }
    template <class T>
    T read_pod(const std::string& what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    uint32_t read_u32(const std::string& what) { return read_pod<uint32_t>(what); }
    uint64_t read_u64(const std::string& what) { return read_pod<uint64_t>(what); }

    std::string read_string(const std::string& what) {
        const uint64_t len = read_u64("the length of " + what);
        if (len > size_ - pos_) {
            fail("has a string of " + std::to_string(len) + " bytes (" + what + ") at offset " + std::to_string(pos_) +
                 " that runs past the end of the file (" + std::to_string(size_) + " bytes)");
        }
        std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
        pos_ += len;
        return s;
    }

    // Rejects a count whose minimal encoding would not fit in the rest of the file (allocation bombs).
    void check_count(uint64_t count, uint64_t min_each, const std::string& what) const {
        uint64_t bytes = 0;
        if (mul_overflows(count, min_each, bytes) || bytes > size_ - pos_) {
            fail("claims " + std::to_string(count) + " " + what + ", which cannot fit in the " +
                 std::to_string(size_ - pos_) + " bytes left after offset " + std::to_string(pos_));
        }
    }

    GgufValue read_value(GgufValueType t, const std::string& what, int depth) {
        GgufValue v;
        v.type_ = t;
        if (t == GgufValueType::String) {
            v.str_ = read_string(what);
        } else if (t == GgufValueType::Array) {
            if (depth >= kMaxArrayDepth) {
                fail(what + " nests arrays deeper than " + std::to_string(kMaxArrayDepth) + " levels");
            }
            const uint32_t et = read_u32("the element type of " + what);
            if (!valid_value_type(et)) fail(what + " is an array of unknown value type " + std::to_string(et));
            const uint64_t count = read_u64("the element count of " + what);
            const auto elem = static_cast<GgufValueType>(et);
            check_count(count, min_encoded_size(elem), "elements in " + what);
            v.elem_ = elem;
            v.count_ = count;
            if (const uint64_t es = scalar_size(elem)) {
                const uint64_t bytes = count * es;  // cannot overflow: checked by check_count
                v.raw_.assign(p_ + pos_, p_ + pos_ + bytes);
                pos_ += bytes;
            } else if (elem == GgufValueType::String) {
                v.strings_.reserve(count);
                for (uint64_t i = 0; i < count; ++i) v.strings_.push_back(read_string(what));
            } else {
                v.nested_.reserve(count);
                for (uint64_t i = 0; i < count; ++i) v.nested_.push_back(read_value(elem, what, depth + 1));
            }
        } else {
            const uint64_t n = scalar_size(t);
            need(n, what);
            std::memcpy(&v.scalar_, p_ + pos_, n);
            pos_ += n;
        }
        return v;
    }

    void read_alignment() {
        auto it = f_.kv_index_.find("general.alignment");
        if (it == f_.kv_index_.end()) return;
        const GgufValue& v = f_.kv_[it->second].second;
        if (!v.is_integer()) fail("general.alignment is " + to_string(v.type()) + ", expected an integer");
        bool ok = false;
        const int64_t a = decode_int(v.type(), reinterpret_cast<const uint8_t*>(&v.scalar_), ok);
        if (!ok || a <= 0 || (a & (a - 1)) != 0 || a > (int64_t{1} << 30)) {
            fail("general.alignment is " + v.summary() + ", expected a power of two between 1 and 2^30");
        }
        f_.alignment_ = static_cast<uint64_t>(a);
    }

    GgufTensorInfo read_tensor_info(uint64_t i) {
        GgufTensorInfo t;
        t.name = read_string("the name of tensor #" + std::to_string(i));
        const std::string what = "tensor '" + t.name + "'";
        const uint32_t n_dims = read_u32("the dimension count of " + what);
        if (n_dims == 0 || n_dims > kMaxDims) {
            fail(what + " has " + std::to_string(n_dims) + " dimensions (supported: 1 to 4)");
        }
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne = read_u64("a dimension of " + what);
            if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
                mul_overflows(n_elements, ne, n_elements) ||
                n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                fail(what + " has dimensions whose element count overflows 64 bits");
            }
            t.ne.push_back(static_cast<int64_t>(ne));
        }
        t.type_id = read_u32("the type of " + what);
        t.offset = read_u64("the data offset of " + what);
        const GgmlTypeTraits* traits = ggml_type_traits(t.type_id);
        if (!traits) {
            const std::string name = ggml_type_name(t.type_id);
            const std::string kind = name.rfind("type ", 0) == 0 ? "an unknown tensor type (id " : name + " (id ";
            fail(what + " has " + kind + std::to_string(t.type_id) +
                 "), which this reader cannot dequantize (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, "
                 "Q4_K, Q6_K)");
        }
        if (t.ne[0] % traits->block_size != 0) {
            fail(what + " has rows of " + std::to_string(t.ne[0]) + " values, not a multiple of the " + traits->name +
                 " block size " + std::to_string(traits->block_size));
        }
        t.n_elements = static_cast<int64_t>(n_elements);
        // n_elements / block_size blocks of type_size bytes; n_elements < 2^63 and type_size <= 210 * block_size
        // keeps this in range only when checked:
        if (mul_overflows(n_elements / static_cast<uint64_t>(traits->block_size),
                          static_cast<uint64_t>(traits->type_size), t.n_bytes)) {
            fail(what + " has a byte size that overflows 64 bits");
        }
        if (t.offset % f_.alignment_ != 0) {
            fail(what + " has data offset " + std::to_string(t.offset) + ", not a multiple of the alignment " +
                 std::to_string(f_.alignment_));
        }
        if (f_.tensor_index_.count(t.name)) fail("has the tensor '" + t.name + "' twice");
        f_.tensor_index_.emplace(t.name, f_.tensors_.size());
        return t;
    }

    void check_tensor_spans() const {
        const uint64_t data_size = size_ > f_.data_offset_ ? size_ - f_.data_offset_ : 0;
        std::vector<const GgufTensorInfo*> order;
        for (const auto& t : f_.tensors_) {
            uint64_t end = 0;
            if (add_overflows(t.offset, t.n_bytes, end) || end > data_size) {
                fail("tensor '" + t.name + "' data [" + std::to_string(t.offset) + ", " +
                     (end < t.offset ? std::string("overflow") : std::to_string(t.offset + t.n_bytes)) +
                     ") lies outside the data section, which holds " + std::to_string(data_size) +
                     " bytes from file offset " + std::to_string(f_.data_offset_));
            }
            if (t.n_bytes > 0) order.push_back(&t);
        }
        std::sort(order.begin(), order.end(),
                  [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
        for (size_t i = 1; i < order.size(); ++i) {
            const auto* prev = order[i - 1];
            if (order[i]->offset < prev->offset + prev->n_bytes) {
                fail("tensors '" + prev->name + "' [" + std::to_string(prev->offset) + ", " +
                     std::to_string(prev->offset + prev->n_bytes) + ") and '" + order[i]->name + "' [" +
                     std::to_string(order[i]->offset) + ", ...) overlap");
            }
        }
    }
};

// ---------------------------------------------------------------------------------------------- GgufFile

std::shared_ptr<const GgufFile> GgufFile::open(const std::string& path) {
    auto f = std::make_shared<GgufFile>();
    f->path_ = path;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(path + ": is not a regular file");
    }
    auto map = std::make_shared<Mapping>();
    if (st.st_size > 0) {
        void* addr = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            throw Error(path + ": cannot memory-map: " + std::strerror(e));
        }
        map->addr = addr;
        map->len = static_cast<size_t>(st.st_size);
    }
    ::close(fd);  // the mapping stays valid
    f->storage_ = map;
    f->base_ = static_cast<const uint8_t*>(map->addr);
    f->size_ = static_cast<uint64_t>(st.st_size);
    GgufParser(*f).parse();
    return f;
}

std::shared_ptr<const GgufFile> GgufFile::from_bytes(std::string_view bytes, const std::string& name) {
    auto f = std::make_shared<GgufFile>();
    f->path_ = name;
    auto copy = std::make_shared<std::vector<uint8_t>>(bytes.begin(), bytes.end());
    f->base_ = copy->data();
    f->size_ = copy->size();
    f->storage_ = copy;
    GgufParser(*f).parse();
    return f;
}

const GgufValue* GgufFile::find(const std::string& key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {
template <class F>
auto typed(const GgufFile& f, const std::string& key, F&& get) -> decltype(get(std::declval<const GgufValue&>())) {
    const GgufValue* v = f.find(key);
    if (!v) throw Error(f.path() + ": metadata key '" + key + "' is missing");
    try {
        return get(*v);
    } catch (const Error& e) {
        throw Error(f.path() + ": metadata key '" + key + "' " + e.what());
    }
}
}  // namespace

int64_t GgufFile::get_int(const std::string& key) const {
    return typed(*this, key, [](const GgufValue& v) { return v.as_int(); });
}
std::optional<int64_t> GgufFile::find_int(const std::string& key) const {
    if (!find(key)) return std::nullopt;
    return get_int(key);
}
double GgufFile::get_double(const std::string& key) const {
    return typed(*this, key, [](const GgufValue& v) { return v.as_double(); });
}
std::optional<double> GgufFile::find_double(const std::string& key) const {
    if (!find(key)) return std::nullopt;
    return get_double(key);
}
std::string GgufFile::get_string(const std::string& key) const {
    return typed(*this, key, [](const GgufValue& v) { return v.as_string(); });
}
std::optional<std::string> GgufFile::find_string(const std::string& key) const {
    if (!find(key)) return std::nullopt;
    return get_string(key);
}
std::optional<bool> GgufFile::find_bool(const std::string& key) const {
    if (!find(key)) return std::nullopt;
    return typed(*this, key, [](const GgufValue& v) { return v.as_bool(); });
}
const GgufValue& GgufFile::get_array(const std::string& key, GgufValueType element_type) const {
    return typed(*this, key, [&](const GgufValue& v) -> const GgufValue& {
        if (!v.is_array() || v.element_type() != element_type) {
            throw Error("is " + (v.is_array() ? "an array of " + to_string(v.element_type()) : to_string(v.type())) +
                        ", expected an array of " + to_string(element_type));
        }
        return v;
    });
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

torch::Tensor GgufFile::load_float(const std::string& name) const {
    const GgufTensorInfo* t = find_tensor(name);
    if (!t) throw Error(path_ + ": has no tensor '" + name + "'");
    auto out = torch::empty(t->torch_shape(), torch::kFloat32);
    if (t->n_elements > 0) dequantize_ggml(t->type(), tensor_data(*t), out.data_ptr<float>(), t->n_elements);
    return out;
}

}  // namespace cloq

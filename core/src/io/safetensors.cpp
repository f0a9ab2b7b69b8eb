#include "cloq/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "base/content_hash.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"

namespace fs = std::filesystem;

namespace cloq {

namespace {

struct DtypeEntry {
    const char* name;
    int bits;
    std::optional<torch::ScalarType> torch_type;  // none: readable as raw bytes only
};
const DtypeEntry kDtypes[] = {
    {"BOOL", 8, torch::kBool},      {"U8", 8, torch::kUInt8},     {"I8", 8, torch::kInt8},
    {"I16", 16, torch::kInt16},     {"U16", 16, std::nullopt},    {"F16", 16, torch::kFloat16},
    {"BF16", 16, torch::kBFloat16}, {"I32", 32, torch::kInt32},   {"U32", 32, std::nullopt},
    {"F32", 32, torch::kFloat32},   {"I64", 64, torch::kInt64},   {"U64", 64, std::nullopt},
    {"F64", 64, torch::kFloat64},   {"F8_E5M2", 8, std::nullopt}, {"F8_E4M3", 8, std::nullopt},
    {"F8_E8M0", 8, std::nullopt},   {"F6_E2M3", 6, std::nullopt}, {"F6_E3M2", 6, std::nullopt},
    {"F4", 4, std::nullopt},
};

const DtypeEntry* find_dtype(const std::string& name) {
    for (const auto& d : kDtypes)
        if (name == d.name) return &d;
    return nullptr;
}

std::string supported_dtypes() {
    std::string s;
    for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
    return s;
}

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Parses JSON rejecting duplicate keys in any object (nlohmann would silently keep the last one).
nlohmann::json parse_json_strict(const char* begin, const char* end, const std::string& where) {
    std::vector<std::set<std::string>> keys;  // one set per open object
    std::string duplicate;
    auto cb = [&](int /*depth*/, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (ev == E::object_start)
            keys.emplace_back();
        else if (ev == E::object_end) {
            if (!keys.empty()) keys.pop_back();
        } else if (ev == E::key && !keys.empty()) {
            const std::string k = parsed.get<std::string>();
            if (!keys.back().insert(k).second && duplicate.empty()) duplicate = k;
        }
        return true;
    };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(begin, end, cb);
    } catch (const nlohmann::json::exception& e) {
        throw Error(where + ": header is not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!duplicate.empty()) throw Error(where + ": header names '" + duplicate + "' twice");
    return j;
}

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType t) {
    for (const auto& d : kDtypes)
        if (d.torch_type && *d.torch_type == t) return d.name;
    throw Error(std::string("safetensors cannot store tensors of type ") + c10::toString(t));
}

// ---- reader -----------------------------------------------------------------------------------------------------

struct SafetensorsFile::Mapping {
    const uint8_t* data = nullptr;
    size_t size = 0;
    ~Mapping() {
        if (data) ::munmap(const_cast<uint8_t*>(data), size);
    }
};

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error("cannot read " + path + ": not a regular file");
    }
    const auto file_size = static_cast<uint64_t>(st.st_size);
    if (file_size < 8) {
        ::close(fd);
        throw Error(path + ": file is " + std::to_string(file_size) +
                    " bytes, too short for a safetensors header (truncated?)");
    }
    auto map = std::make_shared<Mapping>();
    void* p = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) throw Error("cannot map " + path + ": " + std::strerror(errno));
    map->data = static_cast<const uint8_t*>(p);
    map->size = file_size;
    map_ = map;

    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | map->data[i];  // little endian, whatever the host
    if (n > kSafetensorsMaxHeader)
        throw Error(path + ": header length " + std::to_string(n) + " exceeds the 100 MB limit (corrupt file?)");
    if (n > file_size - 8)
        throw Error(path + ": header length " + std::to_string(n) + " runs past the end of the " +
                    std::to_string(file_size) + "-byte file (truncated?)");
    if (n < 2 || map->data[8] != '{') throw Error(path + ": header does not start with a JSON object");
    const char* hbeg = reinterpret_cast<const char*>(map->data + 8);
    const nlohmann::json header = parse_json_strict(hbeg, hbeg + n, path);
    if (!header.is_object()) throw Error(path + ": header is not a JSON object");

    data_ = map->data + 8 + n;
    const uint64_t buffer_size = file_size - 8 - n;
    auto meta = std::make_shared<Meta>();
    for (const auto& [name, v] : header.items()) {
        const std::string where = path + ": tensor '" + name + "'";
        if (name == "__metadata__") {
            if (!v.is_object()) throw Error(path + ": __metadata__ must be an object of strings");
            for (const auto& [k, s] : v.items()) {
                if (!s.is_string()) throw Error(path + ": __metadata__ value of '" + k + "' is not a string");
                meta->metadata[k] = s.get<std::string>();
            }
            continue;
        }
        if (!v.is_object()) throw Error(where + " is not an object");
        SafetensorsTensorInfo t;
        auto dt = v.find("dtype");
        if (dt == v.end() || !dt->is_string()) throw Error(where + " has no dtype string");
        t.dtype = dt->get<std::string>();
        const DtypeEntry* d = find_dtype(t.dtype);
        if (!d) throw Error(where + " has unknown dtype '" + t.dtype + "' (known: " + supported_dtypes() + ")");
        auto sh = v.find("shape");
        if (sh == v.end() || !sh->is_array()) throw Error(where + " has no shape array");
        uint64_t count = 1;
        for (const auto& dim : *sh) {
            if (!dim.is_number_unsigned()) throw Error(where + " has a shape entry that is not a non-negative integer");
            const auto x = dim.get<uint64_t>();
            if (x > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(count, x, &count))
                throw Error(where + ": shape " + sh->dump() + " overflows 64 bits");
            t.shape.push_back(static_cast<int64_t>(x));
        }
        auto off = v.find("data_offsets");
        if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
            !(*off)[1].is_number_unsigned())
            throw Error(where + " needs data_offsets [begin, end] of non-negative integers");
        t.begin = (*off)[0].get<uint64_t>();
        t.end = (*off)[1].get<uint64_t>();
        if (t.end < t.begin) throw Error(where + ": data_offsets end before they begin");
        uint64_t bits = 0;
        if (__builtin_mul_overflow(count, static_cast<uint64_t>(d->bits), &bits))
            throw Error(where + ": size of shape " + sh->dump() + " overflows 64 bits");
        if (bits % 8 != 0)
            throw Error(where + ": " + std::to_string(count) + " elements of " + t.dtype + " do not fill whole bytes");
        if (bits / 8 != t.nbytes())
            throw Error(where + ": " + t.dtype + " " + shape_string(t.shape) + " needs " + std::to_string(bits / 8) +
                        " bytes but data_offsets span " + std::to_string(t.nbytes()));
        meta->tensors.emplace_back(name, std::move(t));
    }
    // Contiguity: sorted by offset, each tensor starts where the previous ended; the last ends at the buffer end.
    std::stable_sort(meta->tensors.begin(), meta->tensors.end(), [](const auto& a, const auto& b) {
        return a.second.begin != b.second.begin ? a.second.begin < b.second.begin : a.second.end < b.second.end;
    });
    uint64_t expected = 0;
    for (const auto& [name, t] : meta->tensors) {
        if (t.begin < expected)
            throw Error(path + ": tensor '" + name + "' overlaps the tensor before it (data_offsets begin " +
                        std::to_string(t.begin) + ", previous ends at " + std::to_string(expected) + ")");
        if (t.begin > expected)
            throw Error(path + ": gap in the data buffer before tensor '" + name + "' (begins at " +
                        std::to_string(t.begin) + ", previous ends at " + std::to_string(expected) + ")");
        expected = t.end;
    }
    if (expected != buffer_size)
        throw Error(path + ": tensors cover " + std::to_string(expected) + " bytes but the data buffer has " +
                    std::to_string(buffer_size) +
                    (expected > buffer_size ? " (file truncated?)" : " (trailing bytes)"));
    for (size_t i = 0; i < meta->tensors.size(); ++i) index_[meta->tensors[i].first] = i;
    meta_ = meta;
}

std::vector<std::string> SafetensorsFile::names() const {
    std::vector<std::string> out;
    out.reserve(meta_->tensors.size());
    for (const auto& e : meta_->tensors) out.push_back(e.first);
    return out;
}

const SafetensorsTensorInfo& SafetensorsFile::info(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw Error(path_ + " has no tensor '" + name + "'");
    return meta_->tensors[it->second].second;
}

const uint8_t* SafetensorsFile::bytes(const std::string& name) const { return data_ + info(name).begin; }

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
    const auto& t = info(name);
    const DtypeEntry* d = find_dtype(t.dtype);
    if (!d || !d->torch_type)
        throw Error(path_ + ": tensor '" + name + "' has dtype " + t.dtype + ", which this build cannot convert");
    // A copy (not from_blob): the mapping may be unaligned for the dtype, and tensors outlive no mapping this way.
    auto out = torch::empty(t.shape, torch::TensorOptions().dtype(*d->torch_type));
    if (t.nbytes() > 0) std::memcpy(out.data_ptr(), data_ + t.begin, t.nbytes());
    return out;
}

torch::Tensor SafetensorsFile::load_float(const std::string& name) const {
    auto t = tensor(name);
    return t.scalar_type() == torch::kFloat32 ? t : t.to(torch::kFloat32);
}

// ---- a whole model ----------------------------------------------------------------------------------------------

namespace {
const char* kIndexName = "model.safetensors.index.json";
bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

SafetensorsWeights::SafetensorsWeights(const std::string& path) : path_(path) {
    std::string index_path, single_path;
    if (fs::is_directory(path)) {
        if (fs::exists(fs::path(path) / kIndexName))
            index_path = (fs::path(path) / kIndexName).string();
        else if (fs::exists(fs::path(path) / "model.safetensors"))
            single_path = (fs::path(path) / "model.safetensors").string();
        else
            throw Error(path + ": no model.safetensors or " + kIndexName + " in this folder");
    } else if (ends_with(path, ".json")) {
        index_path = path;
    } else {
        single_path = path;
    }
    if (!single_path.empty()) {
        files_.emplace_back(single_path);
        for (const auto& n : files_[0].names()) where_[n] = 0;
        return;
    }
    std::ifstream in(index_path, std::ios::binary);
    if (!in) throw Error("cannot open " + index_path + ": " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    const nlohmann::json j = parse_json_strict(text.data(), text.data() + text.size(), index_path);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
        throw Error(index_path + ": no \"weight_map\" object");
    const fs::path dir = fs::path(index_path).parent_path();
    std::map<std::string, size_t> shard_index;
    for (const auto& [name, f] : j["weight_map"].items()) {
        if (!f.is_string()) throw Error(index_path + ": weight_map entry '" + name + "' is not a file name");
        const std::string file = f.get<std::string>();
        // Shards live next to the index: a path that leaves the folder is refused.
        if (file.empty() || file.find('/') != std::string::npos || file.find('\\') != std::string::npos ||
            file == "." || file == "..")
            throw Error(index_path + ": weight_map entry '" + name + "' names an invalid shard '" + file + "'");
        auto it = shard_index.find(file);
        if (it == shard_index.end()) {
            files_.emplace_back((dir / file).string());
            it = shard_index.emplace(file, files_.size() - 1).first;
        }
        if (!files_[it->second].contains(name))
            throw Error(index_path + ": weight_map puts '" + name + "' in " + file + ", which has no such tensor");
        where_[name] = it->second;
    }
    if (files_.empty()) throw Error(index_path + ": weight_map is empty");
}

std::vector<std::string> SafetensorsWeights::names() const {
    std::vector<std::string> out;
    for (const auto& f : files_)
        for (const auto& n : f.names())
            if (where_.count(n) && &files_[where_.at(n)] == &f) out.push_back(n);
    return out;
}

const SafetensorsFile& SafetensorsWeights::file_of(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) throw Error(describe() + " has no tensor '" + name + "'");
    return files_[it->second];
}

std::vector<int64_t> SafetensorsWeights::shape(const std::string& name) const { return file_of(name).info(name).shape; }
std::string SafetensorsWeights::dtype(const std::string& name) const { return file_of(name).info(name).dtype; }
torch::Tensor SafetensorsWeights::tensor(const std::string& name) const { return file_of(name).tensor(name); }

torch::Tensor SafetensorsWeights::load(const std::string& name) const {
    const auto& f = file_of(name);
    auto t = f.load_float(name);
    if (t.numel() > 0 && !torch::isfinite(t).all().item<bool>())
        throw Error(f.path() + ": tensor '" + name + "' contains NaN or Inf values");
    return t;
}

std::string SafetensorsWeights::describe() const {
    std::set<std::string> dtypes;
    for (const auto& [n, i] : where_) dtypes.insert(files_[i].info(n).dtype);
    std::string dt;
    for (const auto& d : dtypes) dt += (dt.empty() ? "" : "/") + d;
    std::string what = files_.size() == 1 ? fs::path(files_[0].path()).filename().string()
                                          : std::to_string(files_.size()) + " safetensors shards";
    return what + " (" + std::to_string(where_.size()) + " tensors, " + dt + ")";
}

std::string SafetensorsWeights::fingerprint() const {
    ContentHash h;
    for (const auto& [name, i] : where_) {
        const auto& info = files_[i].info(name);
        h.update(name).update(info.dtype).update_u64(info.shape.size());
        for (auto d : info.shape) h.update_u64(static_cast<uint64_t>(d));
        const uint8_t* b = files_[i].bytes(name);
        const uint64_t n = info.nbytes(), edge = 64 * 1024;
        if (n <= 2 * edge) {
            h.update(b, n);
        } else {
            h.update(b, edge);
            h.update(b + n - edge, edge);
        }
    }
    return h.hex();
}

// ---- writer -----------------------------------------------------------------------------------------------------

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json m = nlohmann::ordered_json::object();
        for (const auto& [k, v] : metadata) m[k] = v;
        header["__metadata__"] = m;
    }
    std::vector<torch::Tensor> data;
    data.reserve(tensors.size());
    uint64_t offset = 0;
    for (const auto& [name, t0] : tensors) {
        if (name.empty() || name == "__metadata__") throw Error(path + ": invalid tensor name '" + name + "'");
        if (header.contains(name)) throw Error(path + ": tensor '" + name + "' given twice");
        if (!t0.defined()) throw Error(path + ": tensor '" + name + "' is undefined");
        auto t = t0.detach().to(torch::kCPU).contiguous();
        const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
        header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                        {"shape", t.sizes().vec()},
                        {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
        data.push_back(std::move(t));
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');  // pad so the data buffer starts 8-aligned
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((static_cast<uint64_t>(h.size()) >> (8 * i)) & 0xff);
    AtomicFile f(path);
    f.write(len, 8);
    f.write(h);
    for (const auto& t : data) f.write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
    f.commit();
}

}  // namespace cloq

// A small, bounds-checked reader of the protocol-buffers wire format (internal to cloq_core), enough to read
// SentencePiece's ModelProto without linking libprotobuf. It never reads past its buffer: every length, varint and
// fixed-width value is checked against what remains, and a malformed message throws cloq::Error naming the file,
// the message and the byte offset.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "cloq/base/error.h"

namespace cloq::pb {

enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

struct Field {
    uint32_t number = 0;
    WireType type = WireType::Varint;
    uint64_t varint = 0;     // Varint
    uint64_t fixed = 0;      // Fixed32 (low 32 bits) / Fixed64
    std::string_view bytes;  // Bytes: a view into the reader's buffer
    uint64_t offset = 0;     // absolute offset of the field's key, for messages
};

class Reader {
public:
    // `source` is the file named in errors, `message` the protobuf message being read ("ModelProto", ...),
    // `base` the absolute offset of `buf` in the file.
    Reader(std::string_view buf, std::string source, std::string message, uint64_t base = 0)
        : buf_(buf), source_(std::move(source)), message_(std::move(message)), base_(base) {}

    // Reads the next field; false at the clean end of the buffer.
    bool next(Field& f) {
        if (pos_ == buf_.size()) return false;
        f.offset = base_ + pos_;
        const uint64_t key = read_varint("field key");
        const uint64_t number = key >> 3;
        const auto type = static_cast<unsigned>(key & 7);
        if (number == 0 || number > 0x1FFFFFFF) fail(f.offset, "invalid field number " + std::to_string(number));
        f.number = static_cast<uint32_t>(number);
        switch (type) {
        case 0:
            f.type = WireType::Varint;
            f.varint = read_varint("varint of field " + std::to_string(number));
            break;
        case 1:
            f.type = WireType::Fixed64;
            f.fixed = read_fixed(8, number);
            break;
        case 2: {
            f.type = WireType::Bytes;
            const uint64_t len = read_varint("length of field " + std::to_string(number));
            if (len > buf_.size() - pos_)
                fail(f.offset, "field " + std::to_string(number) + " claims " + std::to_string(len) +
                                   " bytes but only " + std::to_string(buf_.size() - pos_) + " remain");
            f.bytes = buf_.substr(pos_, static_cast<std::size_t>(len));
            pos_ += static_cast<std::size_t>(len);
            break;
        }
        case 5:
            f.type = WireType::Fixed32;
            f.fixed = read_fixed(4, number);
            break;
        default:  // 3/4 are the deprecated groups, 6/7 do not exist
            fail(f.offset, "unsupported wire type " + std::to_string(type) + " for field " + std::to_string(number));
        }
        return true;
    }

    // Checks that `f` has the wire type the schema gives it.
    void expect(const Field& f, WireType t, const char* name) const {
        if (f.type != t)
            fail(f.offset,
                 std::string("field ") + name + " (" + std::to_string(f.number) + ") has the wrong wire type");
    }

    // Absolute offset of a view returned in Field::bytes (for nested readers).
    uint64_t offset_of(std::string_view sub) const { return base_ + static_cast<uint64_t>(sub.data() - buf_.data()); }

    [[noreturn]] void fail(uint64_t offset, const std::string& what) const {
        throw Error(source_ + ": malformed " + message_ + " at byte " + std::to_string(offset) + ": " + what);
    }

private:
    uint64_t read_varint(const std::string& what) {
        const uint64_t start = base_ + pos_;
        uint64_t v = 0;
        for (int i = 0; i < 10; ++i) {
            if (pos_ >= buf_.size()) fail(start, what + " is truncated");
            const auto b = static_cast<unsigned char>(buf_[pos_++]);
            if (i == 9 && b > 1) fail(start, what + " overflows 64 bits");
            v |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0) return v;
        }
        fail(start, what + " is longer than 10 bytes");
    }

    uint64_t read_fixed(std::size_t n, uint64_t number) {
        if (buf_.size() - pos_ < n) fail(base_ + pos_, "field " + std::to_string(number) + " is truncated");
        uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v |= static_cast<uint64_t>(static_cast<unsigned char>(buf_[pos_ + i])) << (8 * i);
        pos_ += n;
        return v;
    }

    std::string_view buf_;
    std::string source_, message_;
    uint64_t base_;
    std::size_t pos_ = 0;
};

inline float as_float(const Field& f) {
    const auto bits = static_cast<uint32_t>(f.fixed);
    float x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

// proto2 int32: negative values travel as 64-bit two's complement varints.
inline bool as_int32(const Field& f, int32_t& out) {
    const auto v = static_cast<int64_t>(f.varint);
    if (v < INT32_MIN || v > INT32_MAX) return false;
    out = static_cast<int32_t>(v);
    return true;
}

}  // namespace cloq::pb

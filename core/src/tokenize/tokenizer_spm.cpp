// SentencePiece encoding/decoding, following libsentencepiece 0.1.97 (normalizer.cc, bpe_model.cc,
// unigram_model.cc EncodeOptimized, sentencepiece_processor.cc) so that ids match it exactly.
#include "tokenize/tokenizer_spm.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <queue>
#include <sstream>

#include "cloq/base/error.h"
#include "io/protobuf_wire.h"
#include "tokenize/unicode_text.h"

namespace cloq {

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, what SentencePiece writes for a space
constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";
constexpr float kUnkPenalty = 10.0f;  // unigram_model.h: an unknown character costs min_score - 10

std::string byte_piece(int b) {
    static const char* hex = "0123456789ABCDEF";
    return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

// -1 unless `piece` is exactly <0xNN> with upper-case hex digits (SentencePiece's PieceToByte table).
int piece_to_byte(std::string_view piece) {
    if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
    auto digit = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
    const int hi = digit(piece[3]), lo = digit(piece[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

const char* type_name(SpmPieceType t) {
    switch (t) {
    case SpmPieceType::Normal:
        return "normal";
    case SpmPieceType::Unknown:
        return "unknown";
    case SpmPieceType::Control:
        return "control";
    case SpmPieceType::UserDefined:
        return "user-defined";
    case SpmPieceType::Unused:
        return "unused";
    case SpmPieceType::Byte:
        return "byte";
    }
    return "?";
}

}  // namespace

// The precompiled normalization rules: a Darts-clone double-array trie over input byte strings whose values are
// offsets of NUL-terminated replacement strings. Lookups are bounds-checked: a corrupt trie stops matching, it
// never reads outside the blob.
struct SentencePieceTokenizer::Charsmap {
    std::vector<uint32_t> units;
    std::string_view pool;

    static uint32_t offset(uint32_t u) { return (u >> 10) << ((u & (1U << 9)) >> 6); }
    static bool has_leaf(uint32_t u) { return ((u >> 8) & 1) == 1; }
    static uint32_t value(uint32_t u) { return u & ((1U << 31) - 1); }
    static uint32_t label(uint32_t u) { return u & ((1U << 31) | 0xFF); }

    // Longest rule that is a prefix of `key`: returns its length (0 if none) and the replacement.
    std::size_t longest_prefix(std::string_view key, std::string_view& replacement) const {
        std::size_t best = 0;
        if (units.empty()) return 0;
        std::size_t id = offset(units[0]);
        for (std::size_t i = 0; i < key.size(); ++i) {
            const auto c = static_cast<unsigned char>(key[i]);
            id ^= c;
            if (id >= units.size()) break;
            const uint32_t unit = units[id];
            if (label(unit) != c) break;
            id ^= offset(unit);
            if (id >= units.size()) break;
            if (has_leaf(unit)) {
                const uint32_t v = value(units[id]);
                if (v >= pool.size()) break;
                const auto nul = pool.find('\0', v);
                if (nul == std::string_view::npos) break;
                best = i + 1;
                replacement = pool.substr(v, nul - v);
            }
        }
        return best;
    }
};

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

SentencePieceTokenizer::SentencePieceTokenizer(SpmModelSpec spec, std::string source)
    : spec_(std::move(spec)), source_(std::move(source)) {
    const auto n = spec_.pieces.size();
    auto fail = [&](const std::string& what) { throw Error(source_ + ": invalid SentencePiece model: " + what); };
    if (n == 0) fail("it has no pieces");
    if (n > static_cast<std::size_t>(INT32_MAX)) fail("too many pieces");
    if (spec_.scores.size() != n || spec_.types.size() != n)
        fail(std::to_string(n) + " pieces but " + std::to_string(spec_.scores.size()) + " scores and " +
             std::to_string(spec_.types.size()) + " types");
    std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
    min_score_ = std::numeric_limits<float>::max();
    max_score_ = std::numeric_limits<float>::min();  // FLT_MIN, as unigram_model.cc (a quirk that fixes the
                                                     // user-defined bonus at ~-0.1; reproduced for identical ids)
    for (std::size_t i = 0; i < n; ++i) {
        const auto id = static_cast<int32_t>(i);
        const std::string& p = spec_.pieces[i];
        const SpmPieceType t = spec_.types[i];
        const std::string where = "piece " + std::to_string(i);
        if (p.empty()) fail(where + " is empty");
        if (static_cast<int>(t) < 1 || static_cast<int>(t) > 6)
            fail(where + " has unknown type " + std::to_string(static_cast<int>(t)));
        if (std::isnan(spec_.scores[i])) fail(where + " has a NaN score");
        const bool segmentable =
            t == SpmPieceType::Normal || t == SpmPieceType::UserDefined || t == SpmPieceType::Unused;
        auto& map = segmentable ? pieces_ : reserved_;
        if (pieces_.count(p) || reserved_.count(p)) fail(where + " \"" + p + "\" is already defined");
        map.emplace(std::string_view(p), id);
        if (t == SpmPieceType::UserDefined) user_defined_.push_back(p);
        if (t == SpmPieceType::Unknown) {
            if (unk_id_ >= 0)
                fail("more than one <unk> piece (" + std::to_string(unk_id_) + " and " + std::to_string(i) + ")");
            unk_id_ = id;
        }
        if (t == SpmPieceType::Byte) {
            if (!spec_.byte_fallback) fail(where + " \"" + p + "\" is a byte piece although byte_fallback is off");
            const int b = piece_to_byte(p);
            if (b < 0) fail(where + " \"" + p + "\" is a byte piece not of the form <0xNN>");
            byte_ids_[b] = id;
        }
        if (t == SpmPieceType::Normal) {
            min_score_ = std::min(min_score_, spec_.scores[i]);
            max_score_ = std::max(max_score_, spec_.scores[i]);
        }
    }
    if (unk_id_ < 0) fail("it has no <unk> piece");
    if (spec_.byte_fallback)
        for (int b = 0; b < 256; ++b)
            if (byte_ids_[b] < 0) fail("byte_fallback is on but the byte piece " + byte_piece(b) + " is missing");
    for (const auto* special : {&spec_.bos_id, &spec_.eos_id})
        if (*special < -1 || *special >= static_cast<int64_t>(n))
            fail(std::string(special == &spec_.bos_id ? "bos" : "eos") + " id " + std::to_string(*special) +
                 " is outside the vocabulary of " + std::to_string(n));
    // Longest match first, as the prefix matcher returns the longest user-defined symbol.
    std::sort(user_defined_.begin(), user_defined_.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });

    if (spec_.algorithm == SpmAlgorithm::Bpe) {
        for (const auto& [piece, id] : pieces_) {
            if (spec_.types[id] == SpmPieceType::Unused) has_unused_ = true;
            bool frozen;
            for (std::size_t i = 0, len = symbol_length(piece, frozen); i + len < piece.size();) {
                const std::size_t next = symbol_length(piece.substr(i + len), frozen);
                piece_bigrams_.insert(piece.substr(i, len + next));
                i += len;
                len = next;
            }
        }
    }
    if (spec_.algorithm == SpmAlgorithm::Unigram) {
        for (const auto& [piece, id] : pieces_) {
            for (std::size_t len = 1; len <= piece.size(); ++len) {
                auto [it, inserted] = unigram_prefixes_.emplace(piece.substr(0, len), len == piece.size());
                if (!inserted && len == piece.size()) it->second = true;
            }
        }
    }

    if (!spec_.precompiled_charsmap.empty()) {
        const std::string_view blob = spec_.precompiled_charsmap;
        if (blob.size() <= 4) fail("precompiled_charsmap is truncated");
        uint32_t trie_size = 0;
        for (int i = 0; i < 4; ++i) trie_size |= static_cast<uint32_t>(static_cast<unsigned char>(blob[i])) << (8 * i);
        if (trie_size > blob.size() - 4 || trie_size % 4 != 0)
            fail("precompiled_charsmap claims a trie of " + std::to_string(trie_size) + " bytes in a blob of " +
                 std::to_string(blob.size()));
        charsmap_ = std::make_unique<Charsmap>();
        charsmap_->units.resize(trie_size / 4);
        std::memcpy(charsmap_->units.data(), blob.data() + 4, trie_size);  // little-endian hosts only (x86/ARM)
        charsmap_->pool = blob.substr(4 + trie_size);
    }
}

std::string SentencePieceTokenizer::kind() const {
    return std::string("sentencepiece ") + (spec_.algorithm == SpmAlgorithm::Bpe ? "BPE" : "Unigram") + " (" +
           std::to_string(spec_.pieces.size()) + " pieces" + (spec_.byte_fallback ? ", byte fallback" : "") + ")";
}

int32_t SentencePieceTokenizer::piece_to_id(std::string_view piece) const {
    if (auto it = reserved_.find(piece); it != reserved_.end()) return it->second;
    if (auto it = pieces_.find(piece); it != pieces_.end()) return it->second;
    return unk_id_;
}

std::size_t SentencePieceTokenizer::match_user_defined(std::string_view text, bool& found) const {
    for (const auto& u : user_defined_) {
        if (text.size() >= u.size() && text.compare(0, u.size(), u) == 0) {
            found = true;
            return u.size();
        }
    }
    found = false;
    return std::min(text.size(), unicode::utf8_lead_length(static_cast<unsigned char>(text[0])));
}

// Length of the initial BPE symbol at the start of `text`: a user-defined symbol (frozen) or one character.
std::size_t SentencePieceTokenizer::symbol_length(std::string_view text, bool& frozen) const {
    if (user_defined_.empty()) {
        frozen = false;
        return std::min(text.size(), unicode::utf8_lead_length(static_cast<unsigned char>(text[0])));
    }
    return match_user_defined(text, frozen);
}

// One normalization step: the replacement of the longest rule at the start of `input` and how many input bytes
// it consumed (normalizer.cc NormalizePrefix).
std::pair<std::string_view, std::size_t> SentencePieceTokenizer::normalize_prefix(std::string_view input) const {
    if (!user_defined_.empty()) {
        bool found;
        const std::size_t len = match_user_defined(input, found);
        if (found) return {input.substr(0, len), len};
    }
    if (charsmap_) {
        std::string_view replacement;
        if (const std::size_t len = charsmap_->longest_prefix(input, replacement)) return {replacement, len};
    }
    char32_t cp;
    std::size_t len;
    if (unicode::decode_utf8(input, 0, cp, len)) return {input.substr(0, len), len};
    return {kReplacementUtf8, 1};  // a malformed byte becomes U+FFFD, one byte consumed
}

std::string SentencePieceTokenizer::normalize(std::string_view input) const {
    std::string out;
    if (input.empty()) return out;
    if (spec_.remove_extra_whitespaces) {
        while (!input.empty()) {
            const auto p = normalize_prefix(input);
            if (p.first != " ") break;
            input.remove_prefix(p.second);
        }
    }
    if (input.empty()) return out;
    out.reserve(input.size() * 3 / 2 + 8);
    const std::string_view space = spec_.escape_whitespaces ? kSpaceSymbol : std::string_view(" ");
    if (spec_.add_dummy_prefix) out.append(space);
    bool is_prev_space = spec_.remove_extra_whitespaces;
    while (!input.empty()) {
        const auto p = normalize_prefix(input);
        std::string_view sp = p.first;
        while (is_prev_space && !sp.empty() && sp.front() == ' ') sp.remove_prefix(1);
        if (!sp.empty()) {
            for (char c : sp) {
                if (c == ' ')
                    out.append(space);
                else
                    out += c;
            }
            is_prev_space = sp.back() == ' ';
        }
        input.remove_prefix(p.second);
        if (!spec_.remove_extra_whitespaces) is_prev_space = false;
    }
    if (spec_.remove_extra_whitespaces) {
        while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0)
            out.resize(out.size() - space.size());
    }
    return out;
}

// bpe_model.cc: start from characters (user-defined symbols whole and frozen), repeatedly merge the adjacent pair
// whose concatenation is the highest-scoring piece (leftmost on ties), using a priority queue of candidate pairs
// and a linked list of live symbols; stale queue entries are recognized by their length and skipped.
void SentencePieceTokenizer::bpe_segment(std::string_view normalized, std::vector<EncodedPiece>& out) const {
    struct Symbol {
        int32_t prev, next;
        uint32_t begin, size;  // byte range in `normalized`; size 0 = merged away
        bool freeze;
    };
    struct Pair {
        float score;
        int32_t left, right;
        uint32_t size;
    };
    struct PairOrder {
        bool operator()(const Pair& a, const Pair& b) const {
            return a.score < b.score || (a.score == b.score && a.left > b.left);
        }
    };
    std::vector<Symbol> symbols;
    symbols.reserve(normalized.size());
    for (std::size_t pos = 0; pos < normalized.size();) {
        bool freeze = false;
        const std::size_t len = symbol_length(normalized.substr(pos), freeze);
        const auto index = static_cast<int32_t>(symbols.size());
        symbols.push_back({index - 1, pos + len < normalized.size() ? index + 1 : -1, static_cast<uint32_t>(pos),
                           static_cast<uint32_t>(len), freeze});
        pos += len;
    }
    if (symbols.empty()) return;

    std::priority_queue<Pair, std::vector<Pair>, PairOrder> agenda;
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
    auto view = [&](const Symbol& s) { return normalized.substr(s.begin, s.size); };
    auto maybe_add_pair = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0 || symbols[left].freeze || symbols[right].freeze) return;
        const std::string_view piece = normalized.substr(symbols[left].begin, symbols[left].size + symbols[right].size);
        const auto it = pieces_.find(piece);
        if (it == pieces_.end()) return;
        agenda.push({spec_.scores[it->second], left, right, static_cast<uint32_t>(piece.size())});
        // An unused piece may be formed on the way but is never emitted: remember how to split it again.
        if (spec_.types[it->second] == SpmPieceType::Unused)
            rev_merge[piece] = {view(symbols[left]), view(symbols[right])};
    };
    for (std::size_t i = 1; i < symbols.size(); ++i)
        maybe_add_pair(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

    while (!agenda.empty()) {
        const Pair top = agenda.top();
        agenda.pop();
        Symbol& l = symbols[top.left];
        Symbol& r = symbols[top.right];
        if (l.size == 0 || r.size == 0 || l.size + r.size != top.size) continue;  // stale
        l.size += r.size;
        l.next = r.next;
        if (r.next >= 0) symbols[r.next].prev = top.left;
        r.size = 0;
        maybe_add_pair(l.prev, top.left);
        maybe_add_pair(top.left, l.next);
    }

    std::function<void(std::string_view)> resegment = [&](std::string_view w) {
        const int32_t id = piece_to_id(w);
        if (spec_.types[id] == SpmPieceType::Unused) {
            if (auto it = rev_merge.find(w); it != rev_merge.end()) {
                resegment(it->second.first);
                resegment(it->second.second);
                return;
            }
        }
        out.push_back({w, id});
    };
    for (int32_t i = 0; i != -1; i = symbols[i].next) resegment(view(symbols[i]));
}

// Speed: merges never cross a point between two characters that no piece contains side by side, so the text is
// cut there (typically before each U+2581 and around newlines) and each distinct chunk is segmented once. The
// result is identical to one pass over the whole text, because the merge order inside a chunk does not depend on
// other chunks. Unused pieces are the exception (libsentencepiece's split table for them is global), so models
// that have some take the single pass.
std::vector<SentencePieceTokenizer::EncodedPiece> SentencePieceTokenizer::encode_bpe(
    std::string_view normalized) const {
    std::vector<EncodedPiece> out;
    if (has_unused_) {
        bpe_segment(normalized, out);
        return out;
    }
    struct Segment {
        uint32_t offset, size;
        int32_t id;
    };
    std::unordered_map<std::string_view, std::vector<Segment>> cache;  // keys view into `normalized`
    std::vector<EncodedPiece> scratch;
    std::size_t chunk_begin = 0, pos = 0, prev_len = 0;
    bool prev_frozen = false;
    auto emit_chunk = [&](std::size_t end) {
        const std::string_view chunk = normalized.substr(chunk_begin, end - chunk_begin);
        auto [it, inserted] = cache.try_emplace(chunk);
        if (inserted) {
            scratch.clear();
            bpe_segment(chunk, scratch);
            for (const auto& p : scratch)
                it->second.push_back({static_cast<uint32_t>(p.piece.data() - chunk.data()),
                                      static_cast<uint32_t>(p.piece.size()), p.id});
        }
        for (const Segment& s : it->second) out.push_back({chunk.substr(s.offset, s.size), s.id});
    };
    while (pos < normalized.size()) {
        bool frozen = false;
        const std::size_t len = symbol_length(normalized.substr(pos), frozen);
        if (pos > 0) {
            const bool crossable =
                !frozen && !prev_frozen && piece_bigrams_.count(normalized.substr(pos - prev_len, prev_len + len)) != 0;
            if (!crossable) {
                emit_chunk(pos);
                chunk_begin = pos;
            }
        }
        prev_len = len;
        prev_frozen = frozen;
        pos += len;
    }
    if (pos > chunk_begin) emit_chunk(pos);
    return out;
}

// unigram_model.cc EncodeOptimized: Viterbi over all pieces that occur in the text, with the same float/double
// arithmetic and strict '>' tie rule so that equal-score paths resolve identically.
std::vector<SentencePieceTokenizer::EncodedPiece> SentencePieceTokenizer::encode_unigram(
    std::string_view normalized) const {
    struct BestPathNode {
        int32_t id = -1;
        float score = 0;
        int64_t starts_at = -1;
    };
    const std::size_t size = normalized.size();
    const float unk_score = min_score_ - kUnkPenalty;
    std::vector<BestPathNode> best(size + 1);
    std::size_t starts_at = 0;
    while (starts_at < size) {
        const float till_here = best[starts_at].score;
        bool has_single_node = false;
        const std::size_t mblen =
            std::min(unicode::utf8_lead_length(static_cast<unsigned char>(normalized[starts_at])), size - starts_at);
        for (std::size_t end = starts_at + 1; end <= size; ++end) {
            const auto it = unigram_prefixes_.find(normalized.substr(starts_at, end - starts_at));
            if (it == unigram_prefixes_.end()) break;  // no piece continues this way
            if (!it->second) continue;                 // a proper prefix, not a piece
            const int32_t id = pieces_.find(it->first)->second;
            if (spec_.types[id] == SpmPieceType::Unused) continue;
            const std::size_t length = end - starts_at;
            const double score = spec_.types[id] == SpmPieceType::UserDefined
                                     ? static_cast<double>(static_cast<float>(length) * max_score_) - 0.1
                                     : static_cast<double>(spec_.scores[id]);
            const double candidate = score + static_cast<double>(till_here);
            BestPathNode& target = best[end];
            if (target.starts_at == -1 || candidate > static_cast<double>(target.score)) {
                target = {id, static_cast<float>(candidate), static_cast<int64_t>(starts_at)};
            }
            if (length == mblen) has_single_node = true;
        }
        if (!has_single_node) {
            BestPathNode& target = best[starts_at + mblen];
            const float candidate = unk_score + till_here;
            if (target.starts_at == -1 || candidate > target.score)
                target = {unk_id_, candidate, static_cast<int64_t>(starts_at)};
        }
        starts_at += mblen;
    }
    std::vector<EncodedPiece> out;
    for (std::size_t end = size; end > 0;) {
        const BestPathNode& node = best[end];
        const auto begin = static_cast<std::size_t>(node.starts_at);
        out.push_back({normalized.substr(begin, end - begin), node.id});
        end = begin;
    }
    std::reverse(out.begin(), out.end());
    return out;
}

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string& text, bool add_bos) const {
    const std::string normalized = normalize(text);
    const auto pieces = spec_.algorithm == SpmAlgorithm::Bpe ? encode_bpe(normalized) : encode_unigram(normalized);
    std::vector<int32_t> ids;
    ids.reserve(pieces.size() + 1);
    if (add_bos && spec_.bos_id >= 0) ids.push_back(spec_.bos_id);
    bool prev_unk = false;
    for (const auto& p : pieces) {
        const bool is_unk = p.id == unk_id_;
        if (is_unk && spec_.byte_fallback) {
            for (char c : p.piece) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
        } else if (!(is_unk && prev_unk)) {  // a run of unknown pieces is one <unk>
            ids.push_back(p.id);
        }
        prev_unk = is_unk;
    }
    return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
    std::string text;
    std::string bytes;  // a pending run of byte pieces, turned into UTF-8 when the run ends
    bool is_bos_ws = true, bos_ws_seen = false;
    auto flush_bytes = [&] {
        for (std::size_t i = 0; i < bytes.size();) {
            char32_t cp;
            std::size_t len;
            if (unicode::decode_utf8(bytes, i, cp, len))
                text.append(bytes, i, len);
            else
                text.append(kReplacementUtf8);
            i += len;
        }
        bytes.clear();
    };
    for (const int32_t id : ids) {
        if (id < 0 || id >= vocab_size())
            throw Error(source_ + ": cannot decode token id " + std::to_string(id) + ": the vocabulary has " +
                        std::to_string(vocab_size()) + " pieces");
        const SpmPieceType t = spec_.types[id];
        std::string_view piece = spec_.pieces[id];
        if (t == SpmPieceType::Byte) {
            bytes += static_cast<char>(piece_to_byte(piece));
            continue;
        }
        flush_bytes();
        // The space the normalizer put in front of the text is not part of it: drop the leading U+2581 of the
        // first visible piece (of every leading piece when extra whitespace is removed anyway), as 0.1.97 does.
        if (bos_ws_seen || !text.empty()) is_bos_ws = false;
        bos_ws_seen = false;
        if (t == SpmPieceType::Control) continue;
        if (t == SpmPieceType::Unknown) {
            text += spec_.unk_surface;
            continue;
        }
        if (is_bos_ws && (spec_.add_dummy_prefix || spec_.remove_extra_whitespaces) &&
            piece.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
            piece.remove_prefix(kSpaceSymbol.size());
            bos_ws_seen = !spec_.remove_extra_whitespaces;
        }
        for (std::size_t i = 0; i < piece.size();) {
            if (piece.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
                text += ' ';
                i += kSpaceSymbol.size();
            } else {
                text += piece[i++];
            }
        }
    }
    flush_bytes();
    return text;
}

SpmModelSpec parse_sentencepiece_model(std::string_view bytes, const std::string& source) {
    if (bytes.empty()) throw Error(source + ": the file is empty, not a SentencePiece model");
    SpmModelSpec spec;
    spec.algorithm = SpmAlgorithm::Unigram;  // proto2 default of TrainerSpec.model_type
    pb::Reader top(bytes, source, "SentencePiece model");
    pb::Field f;
    auto flag = [](const pb::Field& x) { return x.varint != 0; };
    while (top.next(f)) {
        if (f.number == 1) {  // repeated SentencePiece pieces
            top.expect(f, pb::WireType::Bytes, "pieces");
            pb::Reader r(f.bytes, source, "piece " + std::to_string(spec.pieces.size()), top.offset_of(f.bytes));
            std::string piece;
            float score = 0;
            int type = 1;
            pb::Field g;
            while (r.next(g)) {
                if (g.number == 1) {
                    r.expect(g, pb::WireType::Bytes, "piece");
                    piece.assign(g.bytes);
                } else if (g.number == 2) {
                    r.expect(g, pb::WireType::Fixed32, "score");
                    score = pb::as_float(g);
                } else if (g.number == 3) {
                    r.expect(g, pb::WireType::Varint, "type");
                    if (g.varint < 1 || g.varint > 6)
                        r.fail(g.offset, "unknown piece type " + std::to_string(g.varint));
                    type = static_cast<int>(g.varint);
                }
            }
            spec.pieces.push_back(std::move(piece));
            spec.scores.push_back(score);
            spec.types.push_back(static_cast<SpmPieceType>(type));
        } else if (f.number == 2) {  // TrainerSpec
            top.expect(f, pb::WireType::Bytes, "trainer_spec");
            pb::Reader r(f.bytes, source, "trainer_spec", top.offset_of(f.bytes));
            pb::Field g;
            while (r.next(g)) {
                auto int32_field = [&](const char* name, int32_t& out) {
                    r.expect(g, pb::WireType::Varint, name);
                    if (!pb::as_int32(g, out)) r.fail(g.offset, std::string(name) + " is not a 32-bit integer");
                };
                switch (g.number) {
                case 3:
                    r.expect(g, pb::WireType::Varint, "model_type");
                    if (g.varint == 1)
                        spec.algorithm = SpmAlgorithm::Unigram;
                    else if (g.varint == 2)
                        spec.algorithm = SpmAlgorithm::Bpe;
                    else if (g.varint == 3 || g.varint == 4)
                        throw Error(source + ": SentencePiece " + (g.varint == 3 ? "WORD" : "CHAR") +
                                    " models are not supported (only BPE and Unigram)");
                    else
                        r.fail(g.offset, "unknown model_type " + std::to_string(g.varint));
                    break;
                case 24:
                    r.expect(g, pb::WireType::Varint, "treat_whitespace_as_suffix");
                    if (flag(g))
                        throw Error(source +
                                    ": SentencePiece models with treat_whitespace_as_suffix are not supported");
                    break;
                case 35:
                    r.expect(g, pb::WireType::Varint, "byte_fallback");
                    spec.byte_fallback = flag(g);
                    break;
                case 41:
                    int32_field("bos_id", spec.bos_id);
                    break;
                case 42:
                    int32_field("eos_id", spec.eos_id);
                    break;
                case 44:
                    r.expect(g, pb::WireType::Bytes, "unk_surface");
                    spec.unk_surface.assign(g.bytes);
                    break;
                default:
                    break;
                }
            }
        } else if (f.number == 3) {  // NormalizerSpec
            top.expect(f, pb::WireType::Bytes, "normalizer_spec");
            pb::Reader r(f.bytes, source, "normalizer_spec", top.offset_of(f.bytes));
            pb::Field g;
            while (r.next(g)) {
                switch (g.number) {
                case 2:
                    r.expect(g, pb::WireType::Bytes, "precompiled_charsmap");
                    spec.precompiled_charsmap.assign(g.bytes);
                    break;
                case 3:
                    r.expect(g, pb::WireType::Varint, "add_dummy_prefix");
                    spec.add_dummy_prefix = flag(g);
                    break;
                case 4:
                    r.expect(g, pb::WireType::Varint, "remove_extra_whitespaces");
                    spec.remove_extra_whitespaces = flag(g);
                    break;
                case 5:
                    r.expect(g, pb::WireType::Varint, "escape_whitespaces");
                    spec.escape_whitespaces = flag(g);
                    break;
                default:
                    break;
                }
            }
        }
        // Other fields (self_test_data, denormalizer_spec, extensions) do not affect encoding.
    }
    if (spec.pieces.empty()) throw Error(source + ": not a SentencePiece model (no pieces found)");
    return spec;
}

std::shared_ptr<Tokenizer> load_sentencepiece(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the SentencePiece model: " + std::strerror(errno));
    in.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(in.tellg());
    constexpr std::streamoff kMaxModelBytes = 256LL << 20;  // real models are < 5 MB
    if (size < 0) throw Error(path + ": cannot read the SentencePiece model");
    if (size > kMaxModelBytes)
        throw Error(path + ": " + std::to_string(size) + " bytes is too large for a SentencePiece model");
    in.seekg(0);
    std::string bytes(static_cast<std::size_t>(size), '\0');
    if (!in.read(bytes.data(), size)) throw Error(path + ": cannot read the SentencePiece model");
    return std::make_shared<SentencePieceTokenizer>(parse_sentencepiece_model(bytes, path), path);
}

std::shared_ptr<Tokenizer> make_gguf_spm_tokenizer(std::vector<std::string> tokens, std::vector<float> scores,
                                                   const std::vector<int32_t>& token_types, int32_t bos_id,
                                                   int32_t eos_id, int32_t unk_id, bool add_space_prefix,
                                                   bool remove_extra_whitespaces, const std::string& source) {
    const std::size_t n = tokens.size();
    if (scores.empty()) scores.assign(n, 0.0f);
    if (scores.size() != n || (!token_types.empty() && token_types.size() != n))
        throw Error(source + ": " + std::to_string(n) + " tokens but " + std::to_string(scores.size()) +
                    " scores and " + std::to_string(token_types.size()) + " token types");
    SpmModelSpec spec;
    spec.algorithm = SpmAlgorithm::Bpe;
    spec.types.assign(n, SpmPieceType::Normal);
    bool has_unknown = false;
    for (std::size_t i = 0; i < token_types.size(); ++i) {
        if (token_types[i] < 1 || token_types[i] > 6)
            throw Error(source + ": token " + std::to_string(i) + " has unknown token type " +
                        std::to_string(token_types[i]));
        spec.types[i] = static_cast<SpmPieceType>(token_types[i]);
        has_unknown = has_unknown || spec.types[i] == SpmPieceType::Unknown;
        spec.byte_fallback = spec.byte_fallback || spec.types[i] == SpmPieceType::Byte;
    }
    if (!has_unknown && unk_id >= 0 && static_cast<std::size_t>(unk_id) < n) spec.types[unk_id] = SpmPieceType::Unknown;
    spec.pieces = std::move(tokens);
    spec.scores = std::move(scores);
    spec.bos_id = bos_id;
    spec.eos_id = eos_id;
    spec.add_dummy_prefix = add_space_prefix;
    spec.remove_extra_whitespaces = remove_extra_whitespaces;
    return std::make_shared<SentencePieceTokenizer>(std::move(spec), source);
}

}  // namespace cloq

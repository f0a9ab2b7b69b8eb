// The reference oracle for our SentencePiece implementation: libsentencepiece itself, in a process of its own
// (it must never share one with LibTorch: both bring protobuf symbols and the process crashes). The tokenizer
// tests run it as a subprocess and compare its ids with ours.
//
//   spm_reference encode-lines MODEL TEXT FIRST COUNT  ids of lines FIRST..FIRST+COUNT-1 of TEXT, one line each
//   spm_reference encode-file MODEL TEXT               ids of the whole file as one string, on one line
//   spm_reference encode-stdin MODEL                   ids of each stdin line given as hex bytes, one line each
//   spm_reference decode MODEL                         stdin: lines of ids; stdout: hex of each decoded text
//   spm_reference train ARGS...                        SentencePieceTrainer::Train("ARGS...")
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

int usage() {
    std::cerr << "usage: spm_reference encode-lines MODEL TEXT FIRST COUNT | encode-file MODEL TEXT | "
                 "encode-stdin MODEL | decode MODEL | train ARGS...\n";
    return 2;
}

bool read_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

void print_ids(const std::vector<int>& ids) {
    for (std::size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << '\n';
}

std::string from_hex(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

std::string to_hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string mode = argv[1];
    if (mode == "train") {
        std::string args;
        for (int i = 2; i < argc; ++i) args += std::string(i > 2 ? " " : "") + argv[i];
        const auto status = sentencepiece::SentencePieceTrainer::Train(args);
        if (!status.ok()) {
            std::cerr << "training failed: " << status.ToString() << '\n';
            return 1;
        }
        return 0;
    }
    if (argc < 3) return usage();
    sentencepiece::SentencePieceProcessor sp;
    if (const auto status = sp.Load(argv[2]); !status.ok()) {
        std::cerr << "cannot load " << argv[2] << ": " << status.ToString() << '\n';
        return 1;
    }
    std::vector<int> ids;
    if (mode == "encode-lines" && argc == 6) {
        std::string text;
        if (!read_file(argv[3], text)) return 1;
        const long first = std::stol(argv[4]), count = std::stol(argv[5]);
        std::istringstream lines(text);
        std::string line;
        for (long i = 0; std::getline(lines, line) && i < first + count; ++i) {
            if (i < first) continue;
            if (!sp.Encode(line, &ids).ok()) return 1;
            print_ids(ids);
        }
        return 0;
    }
    if (mode == "encode-file" && argc == 4) {
        std::string text;
        if (!read_file(argv[3], text)) return 1;
        if (!sp.Encode(text, &ids).ok()) return 1;
        print_ids(ids);
        return 0;
    }
    if (mode == "encode-stdin" && argc == 3) {
        std::string line;
        while (std::getline(std::cin, line)) {
            if (!sp.Encode(from_hex(line), &ids).ok()) return 1;
            print_ids(ids);
        }
        return 0;
    }
    if (mode == "decode" && argc == 3) {
        std::string line;
        while (std::getline(std::cin, line)) {
            std::istringstream in(line);
            ids.clear();
            for (int id; in >> id;) ids.push_back(id);
            std::string text;
            if (!sp.Decode(ids, &text).ok()) return 1;
            std::cout << to_hex(text) << '\n';
        }
        return 0;
    }
    return usage();
}

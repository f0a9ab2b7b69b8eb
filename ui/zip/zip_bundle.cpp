#include "zip_bundle.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <quazip/quazip.h>
#include <quazip/quazipfile.h>
#include <quazip/quazipfileinfo.h>
#include <quazip/quazipnewinfo.h>
#include <QDateTime>
#include <QFile>
#include <QFileInfo>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"

namespace fs = std::filesystem;

namespace cloq::zip {

namespace {
constexpr qint64 kChunk = 1 << 20;

QString q(const std::string& s) { return QString::fromStdString(s); }

// Removes a temporary file unless released (the zip is renamed into place).
struct TempFile {
    std::string path;
    bool keep = false;
    ~TempFile() {
        if (!keep && !path.empty()) ::unlink(path.c_str());
    }
};

void fsync_path(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}
}  // namespace

void write_zip_bundle(const std::string& zip_path, const std::string& folder, const std::string& root_name,
                      const Progress& progress) {
    if (!fs::is_directory(folder)) throw Error("cannot bundle " + folder + ": not a folder");
    if (fs::exists(zip_path)) throw Error("zip bundle " + zip_path + " already exists (choose another name)");
    std::vector<fs::path> files;
    uint64_t total = 0;
    for (const auto& e : fs::recursive_directory_iterator(folder)) {
        if (e.is_symlink()) continue;  // an export holds no links; never follow one out of the folder
        if (!e.is_regular_file()) continue;
        files.push_back(e.path());
        total += e.file_size();
    }
    std::sort(files.begin(), files.end());

    TempFile tmp;
    {
        std::string t = zip_path + ".tmp-XXXXXX";
        std::vector<char> tmpl(t.begin(), t.end());
        tmpl.push_back('\0');
        const int fd = ::mkstemp(tmpl.data());
        if (fd < 0) throw Error("cannot write " + zip_path + ": " + std::strerror(errno));
        ::close(fd);
        tmp.path = tmpl.data();
    }
    QuaZip zip(q(tmp.path));
    zip.setZip64Enabled(true);
    zip.setUtf8Enabled(true);
    if (!zip.open(QuaZip::mdCreate))
        throw Error("cannot write " + zip_path + ": QuaZip error " + std::to_string(zip.getZipError()));
    uint64_t done = 0;
    std::vector<char> buf(kChunk);
    for (const auto& f : files) {
        const std::string rel = fs::relative(f, folder).generic_string();
        const std::string name = root_name.empty() ? rel : root_name + "/" + rel;
        progress(total ? static_cast<double>(done) / total : 0.0, "zipping " + rel);
        QuaZipNewInfo info(q(name), q(f.string()));
        info.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ReadGroup |
                            QFileDevice::ReadOther);
        QuaZipFile out(&zip);
        if (!out.open(QIODevice::WriteOnly, info, nullptr, 0, Z_DEFLATED, 6))
            throw Error("cannot write " + zip_path + ": adding " + name + " failed (QuaZip error " +
                        std::to_string(out.getZipError()) + ")");
        std::ifstream in(f, std::ios::binary);
        if (!in) throw Error("cannot read " + f.string());
        while (in) {
            in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
            const auto n = in.gcount();
            if (n <= 0) break;
            if (out.write(buf.data(), n) != n) throw Error("cannot write " + zip_path + ": " + name + " (disk full?)");
            done += static_cast<uint64_t>(n);
            progress.cancel.throw_if_cancelled();
        }
        out.close();
        if (out.getZipError() != 0)
            throw Error("cannot write " + zip_path + ": " + name + " (QuaZip error " +
                        std::to_string(out.getZipError()) + ")");
    }
    zip.close();
    if (zip.getZipError() != 0) throw Error("cannot write " + zip_path + ": finishing the archive failed (disk full?)");
    fsync_path(tmp.path);
    if (::rename(tmp.path.c_str(), zip_path.c_str()) != 0)
        throw Error("cannot write " + zip_path + ": " + std::strerror(errno));
    tmp.keep = true;
    progress(1.0, "wrote " + zip_path);
}

std::string checked_entry_path(const std::string& name_in, const std::string& where) {
    std::string name = name_in;
    std::replace(name.begin(), name.end(), '\\', '/');
    if (name.empty()) throw Error(where + ": an entry has an empty name");
    if (name.find('\0') != std::string::npos) throw Error(where + ": entry name contains a NUL byte");
    if (name[0] == '/') throw Error(where + ": entry '" + name_in + "' has an absolute path");
    if (name.size() >= 2 && name[1] == ':' && std::isalpha(static_cast<unsigned char>(name[0])))
        throw Error(where + ": entry '" + name_in + "' has an absolute (drive letter) path");
    std::string out;
    size_t start = 0;
    while (start <= name.size()) {
        const size_t end = std::min(name.find('/', start), name.size());
        const std::string seg = name.substr(start, end - start);
        if (seg == "..") throw Error(where + ": entry '" + name_in + "' leaves the folder ('..' segment)");
        if (!seg.empty() && seg != ".") out += (out.empty() ? "" : "/") + seg;
        start = end + 1;
    }
    if (out.empty()) throw Error(where + ": entry '" + name_in + "' names no file");
    return out;
}

std::vector<std::string> extract_zip_bundle(const std::string& zip_path, const std::string& dest_dir,
                                            const BundleLimits& limits, const Progress& progress) {
    if (!fs::is_regular_file(zip_path)) throw Error("cannot open " + zip_path + ": no such file");
    QuaZip zip(q(zip_path));
    if (!zip.open(QuaZip::mdUnzip)) throw Error(zip_path + ": not a readable zip archive");
    // Pass 1: validate every entry before writing anything.
    struct Entry {
        std::string path;
        bool dir;
        uint64_t size;
    };
    std::vector<Entry> entries;
    uint64_t declared = 0;
    for (bool more = zip.goToFirstFile(); more; more = zip.goToNextFile()) {
        QuaZipFileInfo64 info;
        if (!zip.getCurrentFileInfo(&info)) throw Error(zip_path + ": unreadable entry header");
        const std::string name = info.name.toStdString();
        if (entries.size() + 1 > limits.max_entries)
            throw Error(zip_path + ": more than " + std::to_string(limits.max_entries) + " entries");
        if (info.isSymbolicLink()) throw Error(zip_path + ": entry '" + name + "' is a symbolic link");
        if (info.flags & 1) throw Error(zip_path + ": entry '" + name + "' is encrypted");
        const bool dir = !name.empty() && (name.back() == '/' || name.back() == '\\');
        const std::string path = checked_entry_path(name, zip_path);
        if (__builtin_add_overflow(declared, info.uncompressedSize, &declared) || declared > limits.max_total_bytes)
            throw Error(zip_path + ": entries declare more than " + std::to_string(limits.max_total_bytes) +
                        " bytes in total (limit)");
        entries.push_back({path, dir, info.uncompressedSize});
    }
    if (zip.getZipError() != 0) throw Error(zip_path + ": corrupt central directory");

    AtomicDir out(dest_dir);
    std::vector<std::string> files;
    uint64_t written = 0;
    std::vector<char> buf(kChunk);
    size_t i = 0;
    for (bool more = zip.goToFirstFile(); more; more = zip.goToNextFile(), ++i) {
        const auto& e = entries.at(i);
        const fs::path target = fs::path(out.path()) / e.path;
        if (e.dir) {
            fs::create_directories(target);
            continue;
        }
        progress(declared ? static_cast<double>(written) / declared : 0.0, "extracting " + e.path);
        fs::create_directories(target.parent_path());
        if (fs::exists(target)) throw Error(zip_path + ": entry '" + e.path + "' appears twice");
        QuaZipFile in(&zip);
        if (!in.open(QIODevice::ReadOnly)) throw Error(zip_path + ": cannot read entry '" + e.path + "'");
        AtomicFile f(target.string());
        while (true) {
            const qint64 n = in.read(buf.data(), kChunk);
            if (n < 0) throw Error(zip_path + ": entry '" + e.path + "' is corrupt");
            if (n == 0) break;
            written += static_cast<uint64_t>(n);
            if (written > limits.max_total_bytes)
                throw Error(zip_path + ": entries expand to more than " + std::to_string(limits.max_total_bytes) +
                            " bytes (limit; declared sizes were wrong)");
            f.write(buf.data(), static_cast<size_t>(n));
            progress.cancel.throw_if_cancelled();
        }
        in.close();
        if (in.getZipError() != 0) throw Error(zip_path + ": entry '" + e.path + "' failed its CRC check");
        f.commit();
        files.push_back(e.path);
    }
    out.commit();
    return files;
}

}  // namespace cloq::zip

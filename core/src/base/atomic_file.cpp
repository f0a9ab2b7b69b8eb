#include "cloq/base/atomic_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "cloq/base/error.h"

namespace fs = std::filesystem;

namespace cloq {

namespace {
std::string sys_reason() { return std::strerror(errno); }

std::string parent_of(const std::string& path) {
    const fs::path p = fs::path(path).parent_path();
    return p.empty() ? std::string(".") : p.string();
}

// fsync of the folder makes the rename itself durable (POSIX: a rename lives in the directory's data).
void fsync_dir(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;  // best effort: some file systems refuse to open folders
    ::fsync(fd);
    ::close(fd);
}

void remove_quietly(const std::string& path) {
    std::error_code ec;
    fs::remove_all(path, ec);
}

// Renames `dir` to a fresh sibling "<dir>.old-XXXXXX" and returns that name; rename() over the empty folder
// mkdtemp made is allowed, so the move is one atomic step. Throws cloq::Error with `what` and the system's reason.
std::string move_aside(const std::string& dir, const std::string& what) {
    std::string t = dir + ".old-XXXXXX";
    std::vector<char> tmpl(t.begin(), t.end());
    tmpl.push_back('\0');
    if (::mkdtemp(tmpl.data()) == nullptr) throw Error(what + ": " + sys_reason());
    std::string aside = tmpl.data();
    if (::rename(dir.c_str(), aside.c_str()) != 0) {
        const std::string reason = sys_reason();
        remove_quietly(aside);
        throw Error(what + ": " + reason);
    }
    return aside;
}
}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    if (path_.empty()) throw Error("cannot write a file with an empty name");
    if (fs::is_directory(path_)) throw Error("cannot write " + path_ + ": it is a folder");
    const std::string t = path_ + ".tmp-XXXXXX";
    std::vector<char> tmpl(t.begin(), t.end());
    tmpl.push_back('\0');
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0) throw Error("cannot write " + path_ + ": " + sys_reason());
    temp_ = tmpl.data();
    ::fchmod(fd_, 0644);  // mkstemp creates 0600; outputs are ordinary user files
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
    if (fd_ < 0) throw Error("cannot write " + path_ + ": already closed");
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd_, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error("cannot write " + path_ + ": " + sys_reason());
        }
        p += n;
        size -= static_cast<size_t>(n);
    }
}

void AtomicFile::commit() {
    if (committed_) return;
    if (fd_ < 0) throw Error("cannot write " + path_ + ": already closed");
    if (::fsync(fd_) != 0) throw Error("cannot write " + path_ + ": " + sys_reason());
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) throw Error("cannot write " + path_ + ": " + sys_reason());
    if (::rename(temp_.c_str(), path_.c_str()) != 0) throw Error("cannot write " + path_ + ": " + sys_reason());
    committed_ = true;
    fsync_dir(parent_of(path_));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    AtomicFile f(path);
    f.write(bytes);
    f.commit();
}

void check_output_file(const std::string& path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw Error(path + ": is a folder; give a file name to write");
    AtomicFile probe(path);  // uncommitted: its destructor removes the temporary
}

AtomicDir::AtomicDir(std::string dir, bool replace_existing)
    : dir_(std::move(dir)), replace_existing_(replace_existing) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    if (dir_.empty()) throw Error("cannot create a folder with an empty name");
    if (fs::exists(dir_) && !replace_existing_)
        throw Error("output folder " + dir_ + " already exists (choose another name or allow replacing it)");
    if (fs::exists(dir_) && !fs::is_directory(dir_))
        throw Error("cannot create folder " + dir_ + ": a file with that name exists");
    std::string t = dir_ + ".tmp-XXXXXX";
    std::vector<char> tmpl(t.begin(), t.end());
    tmpl.push_back('\0');
    if (::mkdtemp(tmpl.data()) == nullptr) throw Error("cannot create folder " + dir_ + ": " + sys_reason());
    temp_ = tmpl.data();
    ::chmod(temp_.c_str(), 0755);
}

AtomicDir::~AtomicDir() {
    if (!committed_ && !temp_.empty()) remove_quietly(temp_);
}

void AtomicDir::commit() {
    if (committed_) return;
    // Make the files' contents durable before the folder appears under its final name.
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(temp_, ec)) {
        if (!e.is_regular_file()) continue;
        const int fd = ::open(e.path().c_str(), O_RDONLY);
        if (fd >= 0) {
            ::fsync(fd);
            ::close(fd);
        }
    }
    fsync_dir(temp_);
    std::string aside;  // the old output waits here until the new one is in place
    if (fs::exists(dir_)) {
        if (!replace_existing_) throw Error("output folder " + dir_ + " already exists; nothing was written");
        aside = move_aside(dir_, "cannot replace " + dir_);
    }
    if (::rename(temp_.c_str(), dir_.c_str()) != 0) {
        const std::string reason = sys_reason();
        if (!aside.empty()) ::rename(aside.c_str(), dir_.c_str());  // put the old output back
        throw Error("cannot create folder " + dir_ + ": " + reason);
    }
    committed_ = true;
    fsync_dir(parent_of(dir_));
    if (!aside.empty()) remove_quietly(aside);
}

void remove_folder_atomic(const std::string& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return;  // quiet: it runs after OUT is committed, where a throw would misreport
    try {
        remove_quietly(move_aside(dir, "cannot remove " + dir));
    } catch (const Error&) {
        remove_quietly(dir);  // cannot rename (e.g. the parent is read-only): remove it in place, as before
    }
}

}  // namespace cloq

// Outputs that appear whole or not at all (docs/design.md, Bad input): a file or a folder is built under a temporary
// sibling name and renamed into place only when complete, so a failed, cancelled or crashed write never leaves a
// half-written output and never touches an existing one until the new one is ready.
#pragma once
#include <cstddef>
#include <string>

namespace cloq {

// A file being written: bytes go to a temporary sibling "<path>.tmp-XXXXXX" (same folder, so rename is atomic);
// commit() flushes, fsyncs and renames it over `path`. Destroying it uncommitted removes the temporary.
// Every failure (unwritable folder, full disk) throws cloq::Error naming `path` and the system's reason.
class AtomicFile {
public:
    explicit AtomicFile(std::string path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t size);
    void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }
    void commit();
    const std::string& path() const { return path_; }
    const std::string& temp_path() const { return temp_; }

private:
    std::string path_, temp_;
    int fd_ = -1;
    bool committed_ = false;
};

// Convenience: the whole content at once.
void write_file_atomic(const std::string& path, const std::string& bytes);

// For commands that write a file at the end of long work: fails now, with the message the write would give, where
// `path` could not be written then (its folder is missing or read-only, or `path` is a folder). It creates and
// removes a temporary sibling, the one honest test of writability; `path` itself is not touched.
void check_output_file(const std::string& path);

// An output folder being built: files go into a temporary sibling "<dir>.tmp-XXXXXX" (path()); commit() renames it
// to `dir`. An existing `dir` is replaced only when `replace_existing` is true (it is moved aside first and removed
// after the new folder is in place), otherwise commit() throws. Destroying it uncommitted removes the temporary.
class AtomicDir {
public:
    explicit AtomicDir(std::string dir, bool replace_existing = false);
    ~AtomicDir();
    AtomicDir(const AtomicDir&) = delete;
    AtomicDir& operator=(const AtomicDir&) = delete;

    const std::string& path() const { return temp_; }  // where to write the files now
    std::string file(const std::string& name) const { return temp_ + "/" + name; }
    void commit();

private:
    std::string dir_, temp_;
    bool replace_existing_;
    bool committed_ = false;
};

// Removes the folder `dir` so that it disappears in one step: it is first renamed to a sibling
// "<dir>.old-XXXXXX", then deleted; a kill midway leaves that sibling, never `dir` with part of its files.
// Quiet: a folder that cannot be removed stays (cleanup must not hide the error that caused it).
void remove_folder_atomic(const std::string& dir);

}  // namespace cloq

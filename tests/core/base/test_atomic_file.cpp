// Atomic outputs: a file or folder appears whole on commit, and nothing (not even a temporary) remains when the
// writer is abandoned; an existing output is untouched until the new one replaces it.
#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"

using namespace cloq;
namespace fs = std::filesystem;

namespace {
std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}
long entries(const std::string& dir) { return std::distance(fs::directory_iterator(dir), fs::directory_iterator()); }
}  // namespace

class TestAtomicFile : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void fileAppearsOnlyOnCommit() {
        QTemporaryDir dir;
        const std::string p = dir.filePath("out.txt").toStdString();
        {
            AtomicFile f(p);
            f.write("hello ");
            QVERIFY(!fs::exists(p));
            QVERIFY(fs::exists(f.temp_path()));
            QCOMPARE(fs::path(f.temp_path()).parent_path(), fs::path(p).parent_path());  // same folder: atomic rename
            f.write("world");
            f.commit();
        }
        QCOMPARE(slurp(p), std::string("hello world"));
        QCOMPARE(entries(dir.path().toStdString()), 1L);
    }
    void abandonedFileLeavesOldContent() {
        QTemporaryDir dir;
        const std::string p = dir.filePath("out.txt").toStdString();
        write_file_atomic(p, "old");
        {
            AtomicFile f(p);
            f.write("half of the new con");
        }  // destroyed without commit: e.g. an exception while writing
        QCOMPARE(slurp(p), std::string("old"));
        QCOMPARE(entries(dir.path().toStdString()), 1L);
        write_file_atomic(p, "new");
        QCOMPARE(slurp(p), std::string("new"));
    }
    void unwritablePlacesGiveErrorsNamingThePath() {
        QTemporaryDir dir;
        const std::string p = dir.filePath("missing/out.txt").toStdString();
        try {
            write_file_atomic(p, "x");
            QFAIL("must throw");
        } catch (const Error& e) {
            QVERIFY(std::string(e.what()).find(p) != std::string::npos);
        }
        QVERIFY_THROWS_EXCEPTION(Error, write_file_atomic(dir.path().toStdString(), "x"));  // a folder
    }
    void folderAppearsOnlyOnCommit() {
        QTemporaryDir dir;
        const std::string out = dir.filePath("export").toStdString();
        {
            AtomicDir d(out);
            write_file_atomic(d.file("a.json"), "{}");
            fs::create_directories(d.path() + "/sub");
            write_file_atomic(d.path() + "/sub/b.bin", "b");
            QVERIFY(!fs::exists(out));
            d.commit();
        }
        QCOMPARE(slurp(out + "/a.json"), std::string("{}"));
        QCOMPARE(slurp(out + "/sub/b.bin"), std::string("b"));
        QCOMPARE(entries(dir.path().toStdString()), 1L);
    }
    void abandonedFolderIsRemoved() {
        QTemporaryDir dir;
        const std::string out = dir.filePath("export").toStdString();
        try {
            AtomicDir d(out);
            write_file_atomic(d.file("a.json"), "{}");
            throw Error("simulated failure half way");
        } catch (const Error&) {}
        QCOMPARE(entries(dir.path().toStdString()), 0L);
    }
    void existingFolderIsKeptOrReplaced() {
        QTemporaryDir dir;
        const std::string out = dir.filePath("export").toStdString();
        fs::create_directories(out);
        write_file_atomic(out + "/old.txt", "old");
        try {
            AtomicDir d(out);
            QFAIL("an existing folder must not be replaced silently");
        } catch (const Error& e) {
            QVERIFY(std::string(e.what()).find("already exists") != std::string::npos);
        }
        {
            AtomicDir d(out, /*replace_existing=*/true);
            write_file_atomic(d.file("new.txt"), "new");
            QVERIFY(fs::exists(out + "/old.txt"));  // untouched until commit
            d.commit();
        }
        QVERIFY(!fs::exists(out + "/old.txt"));
        QCOMPARE(slurp(out + "/new.txt"), std::string("new"));
        QCOMPARE(entries(dir.path().toStdString()), 1L);  // nothing set aside remains
    }

    void folderIsRemovedWhole() {
        QTemporaryDir dir;
        const std::string f = dir.filePath("checkpoints").toStdString();
        fs::create_directories(f + "/sub");
        write_file_atomic(f + "/run.json", "{}");
        write_file_atomic(f + "/sub/block.bin", "data");
        remove_folder_atomic(f);
        QVERIFY(!fs::exists(f));
        QCOMPARE(entries(dir.path().toStdString()), 0L);  // the renamed-aside copy is gone too
        remove_folder_atomic(f);                          // an absent folder is no error
        QVERIFY(!fs::exists(f));
    }
};

QTEST_APPLESS_MAIN(TestAtomicFile)
#include "test_atomic_file.moc"

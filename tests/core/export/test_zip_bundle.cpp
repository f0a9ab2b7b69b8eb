// Zip bundles (ui/zip, QuaZip): a folder round-trips byte for byte; reading rejects absolute paths, '..' segments
// (also with backslashes), symlink entries and archives over the size cap, naming the zip and the entry, and leaves
// nothing behind. Hostile archives are built byte by byte here (stored entries, hand-written headers) so the test
// controls every field. Built only with the GUI (QuaZip needs Qt Core); otherwise the suite says so and skips.
#include <QtTest>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cloq/base/error.h"

#ifdef CLOQ_HAVE_ZIP
#include "zip_bundle.h"
#endif

namespace fs = std::filesystem;

namespace {

uint32_t crc32(const std::string& s) {
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : s) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

struct RawEntry {
    std::string name, data;
    uint32_t external_attr = 0;
    uint16_t made_by = 0x031E;   // Unix (3), version 3.0
    int64_t declared_size = -1;  // -1: the true size
};

void put16(std::string& o, uint16_t v) {
    o += char(v & 0xff);
    o += char(v >> 8);
}
void put32(std::string& o, uint32_t v) {
    for (int i = 0; i < 4; ++i) o += char((v >> (8 * i)) & 0xff);
}

// A minimal PKZIP archive with stored (uncompressed) entries.
void write_raw_zip(const std::string& path, const std::vector<RawEntry>& entries) {
    std::string out, central;
    for (const auto& e : entries) {
        const uint32_t offset = static_cast<uint32_t>(out.size());
        const uint32_t crc = crc32(e.data);
        const uint32_t size = static_cast<uint32_t>(e.data.size());
        const uint32_t declared = e.declared_size < 0 ? size : static_cast<uint32_t>(e.declared_size);
        put32(out, 0x04034b50);
        put16(out, 20);
        put16(out, 0);
        put16(out, 0);
        put16(out, 0);
        put16(out, 0x21);
        put32(out, crc);
        put32(out, size);
        put32(out, declared);
        put16(out, static_cast<uint16_t>(e.name.size()));
        put16(out, 0);
        out += e.name + e.data;
        put32(central, 0x02014b50);
        put16(central, e.made_by);
        put16(central, 20);
        put16(central, 0);
        put16(central, 0);
        put16(central, 0);
        put16(central, 0x21);
        put32(central, crc);
        put32(central, size);
        put32(central, declared);
        put16(central, static_cast<uint16_t>(e.name.size()));
        put16(central, 0);
        put16(central, 0);
        put16(central, 0);
        put16(central, 0);
        put32(central, e.external_attr);
        put32(central, offset);
        central += e.name;
    }
    const uint32_t cd_offset = static_cast<uint32_t>(out.size());
    out += central;
    put32(out, 0x06054b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, static_cast<uint16_t>(entries.size()));
    put16(out, static_cast<uint16_t>(entries.size()));
    put32(out, static_cast<uint32_t>(central.size()));
    put32(out, cd_offset);
    put16(out, 0);
    std::ofstream(path, std::ios::binary) << out;
}

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

class TestZipBundle : public QObject {
    Q_OBJECT
private Q_SLOTS:
#ifndef CLOQ_HAVE_ZIP
    void unavailable() { QSKIP("built without the GUI: QuaZip (Qt Core) zip bundles are not compiled in"); }
#else
    void roundTrip() {
        QTemporaryDir tmp;
        const fs::path root = tmp.path().toStdString();
        fs::create_directories(root / "OUT/adapter");
        fs::create_directories(root / "OUT/base");
        std::string big(3 << 20, '\0');
        for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
        std::ofstream(root / "OUT/adapter/adapter_config.json") << "{\"r\": 16}\n";
        std::ofstream(root / "OUT/base/model.safetensors", std::ios::binary) << big;
        std::ofstream(root / "OUT/report.csv") << "layer,fro\n";
        const std::string zip = (root / "OUT.zip").string();
        cloq::zip::write_zip_bundle(zip, (root / "OUT").string(), "OUT");
        QVERIFY(fs::exists(zip));
        for (const auto& e : fs::directory_iterator(root))  // no temporary left next to it
            QVERIFY2(e.path().filename().string().find(".tmp-") == std::string::npos, e.path().c_str());
        const auto files = cloq::zip::extract_zip_bundle(zip, (root / "x").string());
        QCOMPARE(files.size(), size_t(3));
        QCOMPARE(read_all(root / "x/OUT/base/model.safetensors"), big);
        QCOMPARE(read_all(root / "x/OUT/adapter/adapter_config.json"), std::string("{\"r\": 16}\n"));
        // An existing bundle is never overwritten.
        QVERIFY_THROWS_EXCEPTION(cloq::Error, cloq::zip::write_zip_bundle(zip, (root / "OUT").string(), "OUT"));
    }

    void acceptsPlainRawZip() {
        QTemporaryDir tmp;
        const std::string zip = tmp.filePath("ok.zip").toStdString();
        write_raw_zip(zip, {{"OUT/a.txt", "hello", 0100644u << 16}, {"OUT\\sub\\b.txt", "world", 0100644u << 16}});
        const auto files = cloq::zip::extract_zip_bundle(zip, tmp.filePath("x").toStdString());
        QCOMPARE(files, (std::vector<std::string>{"OUT/a.txt", "OUT/sub/b.txt"}));
        QCOMPARE(read_all(tmp.filePath("x/OUT/sub/b.txt").toStdString()), std::string("world"));
    }

    void rejectsHostileEntries_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<uint>("attr");
        QTest::addColumn<QString>("needle");
        QTest::newRow("absolute") << "/etc/evil" << 0100644u << "absolute";
        QTest::newRow("dotdot") << "OUT/../../evil" << 0100644u << "'..'";
        QTest::newRow("backslash dotdot") << "OUT\\..\\..\\evil" << 0100644u << "'..'";
        QTest::newRow("drive letter") << "C:/Windows/evil" << 0100644u << "drive letter";
        QTest::newRow("symlink") << "OUT/link" << 0120777u << "symbolic link";
    }
    void rejectsHostileEntries() {
        QFETCH(QString, name);
        QFETCH(uint, attr);
        QFETCH(QString, needle);
        QTemporaryDir tmp;
        const std::string zip = tmp.filePath("bad.zip").toStdString();
        write_raw_zip(zip, {{"OUT/fine.txt", "ok", 0100644u << 16}, {name.toStdString(), "/etc/passwd", attr << 16}});
        const std::string dest = tmp.filePath("x").toStdString();
        try {
            cloq::zip::extract_zip_bundle(zip, dest);
            QFAIL("hostile entry accepted");
        } catch (const cloq::Error& e) {
            const QString m = e.what();
            QVERIFY2(m.contains("bad.zip") && m.contains(needle), qPrintable(m));
        }
        QVERIFY(!fs::exists(dest));  // nothing extracted, not even the fine entry
        QVERIFY(!fs::exists(tmp.filePath("evil").toStdString()));
        for (const auto& e : fs::directory_iterator(tmp.path().toStdString()))
            QVERIFY2(e.path().filename() == "bad.zip", e.path().c_str());
    }

    void rejectsOversize() {
        QTemporaryDir tmp;
        const std::string zip = tmp.filePath("big.zip").toStdString();
        write_raw_zip(
            zip, {{"OUT/a", std::string(300, 'a'), 0100644u << 16}, {"OUT/b", std::string(300, 'b'), 0100644u << 16}});
        cloq::zip::BundleLimits limits;
        limits.max_total_bytes = 500;
        try {
            cloq::zip::extract_zip_bundle(zip, tmp.filePath("x").toStdString(), limits);
            QFAIL("over the cap");
        } catch (const cloq::Error& e) {
            QVERIFY2(QString(e.what()).contains("500"), e.what());
        }
        QVERIFY(!fs::exists(tmp.filePath("x").toStdString()));
        limits.max_total_bytes = 600;
        QCOMPARE(cloq::zip::extract_zip_bundle(zip, tmp.filePath("x").toStdString(), limits).size(), size_t(2));
        // A declared size that lies (smaller than the data) fails the CRC / size check and leaves nothing.
        const std::string liar = tmp.filePath("liar.zip").toStdString();
        RawEntry e{"OUT/a", std::string(300, 'a'), 0100644u << 16};
        e.declared_size = 10;
        write_raw_zip(liar, {e});
        QVERIFY_THROWS_EXCEPTION(cloq::Error, cloq::zip::extract_zip_bundle(liar, tmp.filePath("y").toStdString()));
        QVERIFY(!fs::exists(tmp.filePath("y").toStdString()));
        // Not a zip at all.
        std::ofstream(tmp.filePath("junk.zip").toStdString()) << "not a zip";
        QVERIFY_THROWS_EXCEPTION(cloq::Error, cloq::zip::extract_zip_bundle(tmp.filePath("junk.zip").toStdString(),
                                                                            tmp.filePath("z").toStdString()));
    }
#endif
};

QTEST_APPLESS_MAIN(TestZipBundle)
#include "test_zip_bundle.moc"

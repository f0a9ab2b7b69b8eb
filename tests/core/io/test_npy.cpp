// .npy reader/writer: round trips for every supported dtype and shape, byte-exact files as NumPy writes them,
// and every malformed header rejected with a message naming the file and the problem.
#include <QtTest/QtTest>

#include <filesystem>
#include <fstream>

#include "cloq/base/error.h"
#include "cloq/io/npy.h"
#include "test_support.h"

using namespace cloq;

namespace {
std::string header_v1(const std::string& dict) {
    // NumPy pads the dict with spaces so that magic + version + length + header is a multiple of 64, ending in \n.
    std::string h = dict;
    const size_t total = 10 + h.size() + 1;
    h.append((64 - total % 64) % 64, ' ');
    h += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(h.size() & 0xFF);
    out += static_cast<char>(h.size() >> 8);
    return out + h;
}
std::string header_v2(const std::string& dict) {
    std::string h = dict + "\n";
    std::string out("\x93NUMPY\x02\x00", 8);
    for (int i = 0; i < 4; ++i) out += static_cast<char>((h.size() >> (8 * i)) & 0xFF);
    return out + h;
}
std::string f32_bytes(std::initializer_list<float> v) {
    std::string s(v.size() * 4, '\0');
    std::memcpy(s.data(), std::data(v), s.size());
    return s;
}
}  // namespace

class TestNpy : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    std::string path(const std::string& name) { return dir_.filePath(QString::fromStdString(name)).toStdString(); }
    std::string write_raw(const std::string& name, const std::string& bytes) {
        const auto p = path(name);
        std::ofstream(p, std::ios::binary) << bytes;
        return p;
    }
    // The error message must name the file and contain `what`.
    void expect_error(const std::string& bytes, const std::string& what) {
        const auto p = write_raw("bad.npy", bytes);
        try {
            read_npy(p);
            QFAIL(qPrintable(QString::fromStdString("no error for: " + what)));
        } catch (const Error& e) {
            const std::string msg = e.what();
            QVERIFY2(msg.find(p) != std::string::npos, msg.c_str());
            QVERIFY2(msg.find(what) != std::string::npos, (msg + "  (expected: " + what + ")").c_str());
        }
    }

private Q_SLOTS:
    void roundTripAllDtypes_data() {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<QString>("shape");
        for (auto dt : {torch::kHalf, torch::kFloat32, torch::kFloat64, torch::kInt32, torch::kInt64, torch::kUInt8,
                        torch::kBool})
            for (const char* shape : {"", "5", "3x4", "2x0x3", "2x3x4x5"})
                QTest::newRow(qPrintable(QString("%1 [%2]").arg(c10::toString(dt)).arg(shape)))
                    << static_cast<int>(dt) << QString(shape);
    }
    void roundTripAllDtypes() {
        QFETCH(int, dtype);
        QFETCH(QString, shape);
        std::vector<int64_t> dims;
        for (const auto& d : shape.split('x', Qt::SkipEmptyParts)) dims.push_back(d.toLongLong());
        torch::manual_seed(7);
        auto t = (torch::randn(dims, torch::kFloat64) * 50).to(static_cast<torch::ScalarType>(dtype));
        if (t.scalar_type() == torch::kBool) t = torch::randn(dims) > 0;
        const auto p = path("rt.npy");
        write_npy(p, t);
        const auto back = read_npy(p);
        QCOMPARE(back.scalar_type(), t.scalar_type());
        QCOMPARE(back.sizes(), t.sizes());
        QVERIFY(torch::equal(back, t));
        // NumPy's layout: the data starts at a multiple of 64 bytes, and the file holds exactly the data after it.
        const auto size = std::filesystem::file_size(p);
        QCOMPARE((size - static_cast<uint64_t>(t.numel()) * t.element_size()) % 64, uint64_t(0));
    }
    void writesNonContiguousAsCOrder() {
        const auto t = torch::arange(12, torch::kFloat32).reshape({3, 4}).t();  // a transposed view
        write_npy(path("t.npy"), t);
        QVERIFY(torch::equal(read_npy(path("t.npy")), t.contiguous()));
    }
    void writesNumpyHeaderBytes() {
        write_npy(path("h.npy"), torch::zeros({2, 3}, torch::kFloat32));
        std::ifstream f(path("h.npy"), std::ios::binary);
        std::string all((std::istreambuf_iterator<char>(f)), {});
        QCOMPARE(all.substr(0, 128), header_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        write_npy(path("v.npy"), torch::zeros({5}, torch::kFloat64));
        std::ifstream g(path("v.npy"), std::ios::binary);
        std::string v((std::istreambuf_iterator<char>(g)), {});
        QVERIFY(v.find("'shape': (5,), }") != std::string::npos);
    }
    void readsHandWrittenFiles() {
        // As NumPy writes them: version 1.0 and 2.0, '<' and '|' byte orders, spacing and trailing commas varying.
        auto p = write_raw("a.npy", header_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }") +
                                        f32_bytes({1, 2, 3, 4}));
        auto t = read_npy(p);
        QCOMPARE(t.sizes(), (std::vector<int64_t>{2, 2}));
        QCOMPARE(t[1][0].item<float>(), 3.0f);
        p = write_raw(
            "b.npy", header_v2("{\"shape\":(4,),\"fortran_order\":False,\"descr\":\"<f4\"}") + f32_bytes({5, 6, 7, 8}));
        t = read_npy(p);
        QCOMPARE(t.sizes(), (std::vector<int64_t>{4}));
        QCOMPARE(t[3].item<float>(), 8.0f);
        p = write_raw("c.npy", header_v1("{'descr': '|u1', 'fortran_order': False, 'shape': (3L,)}") + "\x01\x02\x03");
        t = read_npy(p);
        QCOMPARE(t.scalar_type(), torch::kUInt8);
        QCOMPARE(t[2].item<int>(), 3);
        p = write_raw("d.npy", header_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (), }") +
                                   std::string("\0\0\0\0\0\0\xf0\x3f", 8));
        t = read_npy(p);
        QCOMPARE(t.dim(), int64_t(0));
        QCOMPARE(t.item<double>(), 1.0);
    }
    void rejectsMalformed() {
        const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        const std::string data = f32_bytes({1, 2});
        expect_error("hello world, not numpy", "not a .npy file");
        expect_error("", "not a .npy file");
        expect_error(std::string("\x93NUMPY\x04\x00\x10\x00", 10) + std::string(16, ' '),
                     "unsupported .npy format version 4.0");
        expect_error(std::string("\x93NUMPY\x01\x00\x00\x00", 10), "invalid .npy header length 0");
        expect_error(std::string("\x93NUMPY\x01\x00\xff\x7f", 10) + "{}", "file ends inside the header");
        expect_error(std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12), "invalid .npy header length");
        expect_error(header_v1("{'descr': '<f4', 'shape': (2,), }") + data, "missing key 'fortran_order'");
        expect_error(header_v1("{'descr': '<f4', 'fortran_order': False, }") + data, "missing key 'shape'");
        expect_error(header_v1("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}") + data,
                     "duplicate key 'descr'");
        expect_error(header_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}") + data,
                     "unexpected key 'x'");
        expect_error(header_v1("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }") + data,
                     "Fortran-ordered arrays are not supported");
        expect_error(header_v1("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }") + data, "big-endian");
        expect_error(header_v1("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }") + data,
                     "unsupported dtype '<c8'");
        expect_error(header_v1("{'descr': '<U4', 'fortran_order': False, 'shape': (2,), }") + data,
                     "unsupported dtype '<U4'");
        expect_error(header_v1("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }") + data,
                     "unsupported dtype '|O'");
        expect_error(header_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }") + data,
                     "shape must hold non-negative integers");
        expect_error(header_v1("{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }") + data,
                     "fortran_order must be True or False");
        expect_error(header_v1("{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }") + data,
                     "expected ',' or '}'");
        expect_error(header_v1("['descr', '<f4']") + data, "expected '{'");
        expect_error(header_v1(ok + " trailing") + data, "unexpected text after the dict");
        expect_error(header_v1("{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }") + data,
                     "malformed .npy header");
        expect_error(header_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
                     "too large");
        expect_error(header_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"),
                     "too large");
        // A header must end with a newline.
        std::string no_nl = header_v1(ok);
        no_nl[no_nl.size() - 1] = ' ';
        expect_error(no_nl + data, "must end with a newline");
        // Data size: truncated, and extra bytes after the array.
        expect_error(header_v1(ok) + data.substr(0, 7), "data size mismatch");
        expect_error(header_v1(ok) + data.substr(0, 7), "(truncated)");
        expect_error(header_v1(ok) + data + "x", "data size mismatch");
        expect_error(header_v1("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }") + "\x01\x07",
                     "invalid bool value");
    }
    void parseHeaderWithoutTorch() {
        const auto bytes = header_v1("{'descr': '<i8', 'fortran_order': False, 'shape': (3, 5), }");
        const auto h = parse_npy_header(bytes, "mem.npy", static_cast<int64_t>(bytes.size() + 3 * 5 * 8));
        QCOMPARE(h.kind, 'i');
        QCOMPARE(h.itemsize, 8);
        QCOMPARE(h.shape, (std::vector<int64_t>{3, 5}));
        QCOMPARE(h.data_offset, uint64_t(bytes.size()));
        QCOMPARE(h.data_bytes, uint64_t(120));
    }
    void missingFileAndUnwritablePath() {
        try {
            read_npy(path("nope.npy"));
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY(std::string(e.what()).find("nope.npy: cannot open") != std::string::npos);
        }
        const auto bad = path("no/such/folder/x.npy");
        QVERIFY_THROWS_EXCEPTION(Error, write_npy(bad, torch::zeros({2})));
        try {
            write_npy(bad, torch::zeros({2}));
        } catch (const Error& e) {
            QVERIFY(std::string(e.what()).find(bad) != std::string::npos);
        }
        QVERIFY_THROWS_EXCEPTION(Error, write_npy(path("c.npy"), torch::zeros({2}, torch::kComplexFloat)));
        // A failed write leaves nothing behind, and an existing file is replaced whole.
        write_npy(path("keep.npy"), torch::ones({3}));
        write_npy(path("keep.npy"), torch::zeros({4}));
        QCOMPARE(read_npy(path("keep.npy")).size(0), int64_t(4));
        for (const auto& e : std::filesystem::directory_iterator(dir_.path().toStdString()))
            QVERIFY2(e.path().string().find(".tmp-") == std::string::npos, e.path().c_str());
    }
};

QTEST_APPLESS_MAIN(TestNpy)
#include "test_npy.moc"

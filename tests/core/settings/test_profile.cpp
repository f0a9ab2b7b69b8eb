// Settings profiles: global settings + regex overrides resolve per module as documented (file order, later wins,
// skip), save -> load round-trips, and malformed profiles give errors naming the file and the override.
#include <QtTest>

#include <fstream>

#include "cloq/base/error.h"
#include "cloq/settings/profile.h"
#include "expect_error.h"

using namespace cloq;
using cloq::test::expect_error;

class TestProfile : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void resolvesOverrides() {
        const auto p = profile_from_json(
            nlohmann::json::parse(
                "{\n"
                "            \"format\": \"cloq-profile\", \"version\": 1,\n"
                "            \"global\": {\"bits\": 2, \"group\": 64, \"rank\": 16, \"init\": \"cloq\"},\n"
                "            \"overrides\": [\n"
                "                {\"match\": \"mlp\\\\.down_proj\", \"bits\": 3},\n"
                "                {\"match\": \"layers\\\\.[01]\\\\.\", \"rank\": 128},\n"
                "                {\"match\": \"layers\\\\.1\\\\.mlp\\\\.down_proj\", \"bits\": 4, \"group\": 128},\n"
                "                {\"match\": \"layers\\\\.4\\\\.self_attn\\\\.o_proj\", \"skip\": true}\n"
                "            ]}"),
            "p.json");
        bool skipped = true;
        auto s = p.for_module("model.layers.3.self_attn.q_proj", &skipped);
        QVERIFY(!skipped);
        QCOMPARE(s.quant.bits, 2);
        QCOMPARE(s.rank, 16);
        s = p.for_module("model.layers.3.mlp.down_proj");
        QCOMPARE(s.quant.bits, 3);
        QCOMPARE(s.rank, 16);
        s = p.for_module("model.layers.0.mlp.down_proj");
        QCOMPARE(s.quant.bits, 3);
        QCOMPARE(s.rank, 128);
        s = p.for_module("model.layers.1.mlp.down_proj");  // all three apply, the last wins on bits
        QCOMPARE(s.quant.bits, 4);
        QCOMPARE(s.quant.group, 128);
        QCOMPARE(s.rank, 128);
        s = p.for_module("model.layers.11.self_attn.q_proj");  // "layers\.1\." does not match layers.11
        QCOMPARE(s.rank, 16);
        p.for_module("model.layers.4.self_attn.o_proj", &skipped);
        QVERIFY(skipped);
        p.for_module("model.layers.4.self_attn.q_proj", &skipped);
        QVERIFY(!skipped);
    }

    void saveLoadRoundTrip() {
        SettingsProfile p;
        p.global.quant.bits = 3;
        p.global.quant.group = 128;
        p.global.rank = 32;
        p.global.init = InitMethod::Loftq;
        p.global.split = Split::Sqrt;
        p.global.lora_alpha = 32;
        p.overrides.push_back({"down_proj", nlohmann::json{{"bits", 4}}, false});
        p.overrides.push_back({"q_proj", nlohmann::json::object(), true});
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("profile.json").toStdString();
        save_profile(path, p);
        const auto q = load_profile(path);
        QVERIFY(q.global == p.global);
        QCOMPARE(q.overrides.size(), size_t(2));
        QCOMPARE(q.overrides[0].match, std::string("down_proj"));
        QCOMPARE(q.overrides[0].settings["bits"].get<int>(), 4);
        QVERIFY(q.overrides[1].skip);
        QCOMPARE(q.for_module("model.layers.0.mlp.down_proj").quant.bits, 4);
        QCOMPARE(q.for_module("model.layers.0.mlp.up_proj").quant.bits, 3);
    }

    void rejectsMalformed() {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("bad.json").toStdString();
        auto with = [&](const std::string& text) {
            std::ofstream(path) << text;
            return [path] { load_profile(path); };
        };
        expect_error(with("{ nope"), {"bad.json", "not valid JSON"});
        expect_error(with("{\"global\": {\"bits\": 5}}"), {"bad.json", "global", "bit width 5"});
        expect_error(with("{\"global\": {\"bitz\": 2}}"), {"bad.json", "unknown setting 'bitz'"});
        expect_error(with("{\"overrides\": [{\"bits\": 3}]}"), {"bad.json", "override 0", "match"});
        expect_error(with("{\"overrides\": [{\"match\": \"a\", \"bits\": 3}, {\"match\": \"(\", \"rank\": 3}]}"),
                     {"bad.json", "override 1", "regular expression"});
        // libstdc++ would overflow a long on these counts (undefined behaviour; found by fuzz_profile).
        expect_error(with("{\"overrides\": [{\"match\": \"q_proj{1006666666666666666}\", \"bits\": 3}]}"),
                     {"bad.json", "override 0", "regular expression", "more than 4 digits"});
        expect_error(with("{\"overrides\": [{\"match\": \"(a)\\\\99999999999999999999\", \"bits\": 3}]}"),
                     {"bad.json", "override 0", "regular expression", "more than 4 digits"});
        expect_error(with("{\"overrides\": [{\"match\": \"a\", \"group\": 0}]}"),
                     {"bad.json", "override 0", "group size 0"});
        expect_error(with("{\"overrides\": [{\"match\": \"a\", \"skip\": \"yes\"}]}"), {"bad.json", "skip"});
        expect_error(with("{\"version\": 2}"), {"bad.json", "version"});
        expect_error(with("{\"globals\": {}}"), {"bad.json", "unknown key 'globals'"});
        expect_error(with("[1, 2]"), {"bad.json", "object"});
        expect_error([&] { load_profile(tmp.filePath("missing.json").toStdString()); }, {"missing.json"});
    }
};

QTEST_APPLESS_MAIN(TestProfile)
#include "test_profile.moc"

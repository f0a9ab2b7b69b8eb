#include "studio_options.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDir>
#include <QDirIterator>
#include <QFileInfo>
#include <QRegularExpression>
#include <QTextStream>
#include <cstdlib>
#include <cstring>

namespace cloq::ui {

QStringList tab_names() {
    return {"discrepancy", "rank", "spectrum", "weights", "overview", "playground", "finetune", "budget"};
}

std::optional<StudioOptions> parse_studio_options(const QStringList& args, int* exit_code) {
    QCommandLineParser p;
    p.setApplicationDescription(
        "CLoQ Studio: quantize Llama-family models and initialize LoRA adapters with CLoQ, compared with LoftQ.\n"
        "Headless screenshot: QT_QPA_PLATFORM=offscreen cloq-studio --demo --tab rank --screenshot out.png");
    p.addHelpOption();
    p.addVersionOption();
    QCommandLineOption model("model", "Open the model folder DIR.", "DIR");
    QCommandLineOption demo("demo", "Open the bundled demo model (stories260K) with its calibration text.");
    QCommandLineOption layer("layer", "Select the linear module NAME (e.g. model.layers.0.self_attn.q_proj).", "NAME");
    QCommandLineOption tab("tab", "Show tab NAME: " + tab_names().join('|') + ".", "NAME");
    QCommandLineOption size("size", "Window size WxH, e.g. 1280x800.", "WxH");
    QCommandLineOption shot("screenshot", "Wait for the view to be computed, save the window to FILE.png, exit.",
                            "FILE");
    QCommandLineOption theme("theme", "Colour theme: light or dark.", "NAME");
    QCommandLineOption profile("profile", "Load the settings profile FILE (JSON) after opening the model.", "FILE");
    QCommandLineOption text("calib-text", "Calibration text file (default: the demo's text).", "FILE");
    QCommandLineOption nsamples("nsamples", "Calibration windows (default 32).", "N");
    QCommandLineOption seqlen("seqlen", "Calibration window length in tokens (default 256).", "N");
    QCommandLineOption timeout("timeout", "Give up a --screenshot run after S seconds (default 600).", "S");
    p.addOptions({model, demo, layer, tab, size, shot, theme, profile, text, nsamples, seqlen, timeout});

    QTextStream err(stderr);
    auto fail = [&](const QString& msg) -> std::optional<StudioOptions> {
        err << "cloq-studio: " << msg << "\n";
        *exit_code = 2;
        return std::nullopt;
    };
    if (!p.parse(args)) return fail(p.errorText());
    if (p.isSet("help")) {
        QTextStream(stdout) << p.helpText();
        *exit_code = 0;
        return std::nullopt;
    }
    if (p.isSet("version")) {
        QTextStream(stdout) << "cloq-studio " << QCoreApplication::applicationVersion() << "\n";
        *exit_code = 0;
        return std::nullopt;
    }
    if (!p.positionalArguments().isEmpty())
        return fail("unexpected argument '" + p.positionalArguments().first() + "' (use --model DIR)");

    StudioOptions o;
    o.model_dir = p.value(model);
    o.demo = p.isSet(demo);
    o.layer = p.value(layer);
    o.tab = p.value(tab).toLower();
    o.screenshot = p.value(shot);
    o.theme = p.value(theme).toLower();
    o.profile = p.value(profile);
    o.calib_text = p.value(text);
    if (!o.tab.isEmpty() && !tab_names().contains(o.tab))
        return fail("--tab '" + o.tab + "' is not one of " + tab_names().join(", "));
    if (!o.theme.isEmpty() && o.theme != "light" && o.theme != "dark")
        return fail("--theme '" + o.theme + "' is not light or dark");
    if (p.isSet(size)) {
        static const QRegularExpression re("^(\\d{2,5})[xX](\\d{2,5})$");
        const auto m = re.match(p.value(size));
        if (!m.hasMatch()) return fail("--size '" + p.value(size) + "' is not WIDTHxHEIGHT, e.g. 1280x800");
        o.size = QSize(m.captured(1).toInt(), m.captured(2).toInt());
    }
    auto parse_positive = [&](const QCommandLineOption& opt, int* out) -> bool {
        if (!p.isSet(opt)) return true;
        bool ok = false;
        const int v = p.value(opt).toInt(&ok);
        if (!ok || v <= 0) return false;
        *out = v;
        return true;
    };
    if (!parse_positive(nsamples, &o.nsamples)) return fail("--nsamples must be a positive integer");
    if (!parse_positive(seqlen, &o.seqlen)) return fail("--seqlen must be a positive integer");
    if (!parse_positive(timeout, &o.timeout_s)) return fail("--timeout must be a positive number of seconds");
    if (o.demo && !o.model_dir.isEmpty()) return fail("give either --demo or --model, not both");
    if (!o.screenshot.isEmpty() && o.model_dir.isEmpty() && !o.demo && o.tab != "playground")
        return fail("--screenshot needs a model (--model DIR or --demo), or --tab playground");
    return o;
}

bool has_usable_platform(int argc, char** argv) {
    for (const char* var : {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}) {
        const char* v = std::getenv(var);
        if (v && *v) return true;
    }
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "-platform") == 0 || std::strncmp(argv[i], "-platform=", 10) == 0) return true;
    return false;
}

QString headless_instructions() {
    return "cloq-studio: no display found (DISPLAY and WAYLAND_DISPLAY are unset).\n"
           "To run without a screen, choose Qt's offscreen platform or a virtual X server, for example:\n"
           "  QT_QPA_PLATFORM=offscreen cloq-studio --demo --tab rank --size 1280x800 --screenshot rank.png\n"
           "  xvfb-run -a cloq-studio --demo --screenshot studio.png\n"
           "(--screenshot alone also picks the offscreen platform when there is no display.)\n"
           "The command-line tool `cloq` needs no display at all: cloq --help\n";
}

namespace {
bool is_shared_dir(const QString& dir) { return QDir(dir).exists("models") || QDir(dir).exists("data"); }
}  // namespace

QString find_shared_dir() { return find_shared_dir(qgetenv("CLOQ_SHARED_DIR")); }

QString find_shared_dir(const QByteArray& env) {
    if (!env.isEmpty() && is_shared_dir(QString::fromLocal8Bit(env)))
        return QDir(QString::fromLocal8Bit(env)).absolutePath();
    // Build tree (repo/build/app/cloq-studio -> repo/../shared) and install prefix (prefix/bin -> prefix/share/...).
    QDir dir(QCoreApplication::applicationDirPath());
    for (int up = 0; up < 6; ++up) {
        for (const QString& name : {QStringLiteral("shared"), QStringLiteral("share/cloq-studio")}) {
            const QString candidate = dir.absoluteFilePath(name);
            if (is_shared_dir(candidate)) return QDir(candidate).absolutePath();
        }
        if (!dir.cdUp()) break;
    }
#ifdef CLOQ_SOURCE_SHARED_DIR
    if (is_shared_dir(CLOQ_SOURCE_SHARED_DIR)) return QDir(CLOQ_SOURCE_SHARED_DIR).absolutePath();
#endif
    return {};
}

DemoLocation find_demo() {
    DemoLocation demo;
    const QString shared = find_shared_dir();
    if (shared.isEmpty()) return demo;
    // The smallest model folder (by the size of its weight files) is the demo: it calibrates in seconds.
    qint64 best = -1;
    for (const QFileInfo& m : QDir(shared + "/models").entryInfoList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name)) {
        QDir md(m.absoluteFilePath());
        if (!md.exists("config.json")) continue;
        qint64 bytes = 0;
        for (const QFileInfo& f : md.entryInfoList({"*.safetensors"}, QDir::Files)) bytes += f.size();
        if (bytes == 0) continue;
        if (best < 0 || bytes < best) {
            best = bytes;
            demo.model_dir = m.absoluteFilePath();
        }
    }
    // Its text: the TinyStories validation text when present (what the stories models were trained on),
    // else the first text file.
    QDir data(shared + "/data");
    if (data.exists("tinystories-valid.txt"))
        demo.text_path = data.absoluteFilePath("tinystories-valid.txt");
    else if (const auto texts = data.entryInfoList({"*.txt"}, QDir::Files, QDir::Name); !texts.isEmpty())
        demo.text_path = texts.first().absoluteFilePath();
    return demo;
}

}  // namespace cloq::ui

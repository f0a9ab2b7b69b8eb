// bench_open_fill: what a GUI user waits for after opening a model (issue 17). Opens the model in the real main
// window (offscreen), then records the wall time until: the model is open and calibrated; the selected layer's
// final report is on screen (and how many explorer rows were current by then: the selected layer comes first);
// every explorer row is current (the background analysis filled the explorer). Run it twice with one cache folder
// to see the time with the calibration cached.
//
//   bench_open_fill --model M [--calib TEXT] [--nsamples 32] [--seqlen 256] [--cache DIR] [--json FILE]
#include <QApplication>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QTimer>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"
#include "layer_table_model.h"
#include "main_window.h"
#include "model_session.h"
#include "session_controller.h"
#include "studio_options.h"
#include "theme.h"

using namespace cloq;
using namespace cloq::ui;

int main(int argc, char** argv) {
    std::map<std::string, std::string> opt = {{"nsamples", "32"}, {"seqlen", "256"}};
    for (int i = 1; i + 1 < argc; i += 2) opt[std::string(argv[i]).substr(2)] = argv[i + 1];
    if (!opt.count("model")) {
        std::cerr << "bench_open_fill: --model is required\n";
        return 2;
    }
    if (opt.count("cache")) qputenv("CLOQ_CACHE_DIR", QByteArray::fromStdString(opt["cache"]));
    qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    apply_theme(app, Theme::Light);
    MainWindow w;
    w.resize(1280, 800);
    w.show();

    CalibSettings calib = default_calibration(find_demo().text_path);
    if (opt.count("calib")) calib.text_path = opt["calib"];
    calib.nsamples = std::stoi(opt["nsamples"]);
    calib.seqlen = std::stoi(opt["seqlen"]);

    QElapsedTimer t;
    double t_open = -1, t_first = -1, t_fill = -1;
    int current_at_first = -1, rows = 0;
    QString selected;
    int status = 0;
    auto count_current = [&] {
        int n = 0;
        for (const LayerRow& r : w.controller()->layers()->layers()) n += r.current() ? 1 : 0;
        return n;
    };
    QObject::connect(&w, &MainWindow::modelOpenFailed, [&](const QString& m) {
        std::cerr << "bench_open_fill: " << m.toStdString() << "\n";
        status = 1;
        app.quit();
    });
    QObject::connect(&w, &MainWindow::modelOpened, [&] {
        t_open = t.elapsed() / 1000.0;
        selected = w.currentLayer();
        rows = w.controller()->layers()->rowCount();
        std::cerr << "open + calibration: " << t_open << " s; selected " << selected.toStdString() << "\n";
    });
    QObject::connect(&w, &MainWindow::layerReportShown, [&](const QString& l, bool final) {
        if (!final || t_first >= 0 || l != selected) return;
        t_first = t.elapsed() / 1000.0;
        current_at_first = count_current();
        std::cerr << "selected layer's final report: " << t_first << " s (" << current_at_first << " rows current)\n";
    });
    QObject::connect(w.controller(), &SessionController::analysisFinished, [&](bool complete) {
        if (!complete) return;
        t_fill = t.elapsed() / 1000.0;
        std::cerr << "every row current: " << t_fill << " s\n";
        app.quit();
    });
    t.start();
    w.openModel(QFileInfo(QString::fromStdString(opt["model"])).absoluteFilePath(), calib);
    QTimer::singleShot(3600 * 1000, &app, [&] {
        std::cerr << "bench_open_fill: timed out\n";
        status = 1;
        app.quit();
    });
    app.exec();
    nlohmann::json j = {
        {"model", opt["model"]},
        {"calibration", {{"text", calib.text_path}, {"nsamples", calib.nsamples}, {"seqlen", calib.seqlen}}},
        {"layers", w.controller()->layers()->layers().size()},
        {"selected", selected.toStdString()},
        {"open_calibrated_s", t_open},
        {"selected_final_s", t_first},
        {"rows_current_at_selected", current_at_first},
        {"all_rows_current_s", t_fill},
        {"rows_current_at_end", count_current()}};
    (void)rows;
    std::cout << j.dump() << "\n";
    if (opt.count("json")) write_file_atomic(opt["json"], j.dump(2) + "\n");
    return status;
}

#include "export_job.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTabWidget>

#include "chart_panel.h"
#include "cloq/base/error.h"
#include "main_window.h"
#include "model_session.h"
#include "studio_options.h"

#include "cloq/pipeline/quantize_pipeline.h"
#ifdef CLOQ_HAVE_ZIP
#include "zip_bundle.h"
#endif

namespace cloq::ui {

QStringList render_charts(MainWindow* window, const QString& dir, const QString& format) {
    QStringList written;
    if (!QDir().mkpath(dir)) throw Error(dir.toStdString() + ": cannot create the charts folder");
    QStringList suffixes;
    if (format == "png" || format == "both") suffixes << "png";
    if (format == "svg" || format == "both") suffixes << "svg";
    if (suffixes.isEmpty()) throw Error("chart format '" + format.toStdString() + "' is not png, svg or both");
    QTabWidget* tabs = window->tabs();
    const QStringList names = tab_names();
    const int shown = tabs->currentIndex();
    for (int i = 0; i < tabs->count() && i < names.size(); ++i) {
        if (names[i] == "playground") continue;  // not about this model
        // Each page is rendered while it is the visible tab, so its layout and charts have their real size.
        tabs->setCurrentIndex(i);
        QWidget* page = tabs->widget(i);
        for (const QString& suffix : suffixes) {
            const QString path = QDir(dir).absoluteFilePath(names[i] + "." + suffix);
            save_widget_image(page, path);
            written << path;
        }
    }
    tabs->setCurrentIndex(shown);
    return written;
}

namespace {
// Copies every file of `from` into `to` (creating it); used to put the rendered charts into the export folder.
void copy_folder(const QString& from, const QString& to) {
    QDir src(from);
    if (!QDir().mkpath(to)) throw Error(to.toStdString() + ": cannot create the folder");
    for (const QFileInfo& f : src.entryInfoList(QDir::Files)) {
        const QString dst = QDir(to).absoluteFilePath(f.fileName());
        if (!QFile::copy(f.absoluteFilePath(), dst)) throw Error(dst.toStdString() + ": cannot write the file");
    }
}
}  // namespace

void run_export(const ModelSession& session, const SettingsProfile& profile, const ExportRequest& req,
                const QString& charts_dir, const Progress& progress) {
    if (req.folder.isEmpty()) throw Error("export: choose an output folder");
    const std::string out_dir = QFileInfo(req.folder).absoluteFilePath().toStdString();
    std::function<void(const std::string&)> add_files;
    if (req.charts && !charts_dir.isEmpty())
        add_files = [charts_dir](const std::string& temp_out) {
            copy_folder(charts_dir, QDir(QString::fromStdString(temp_out)).absoluteFilePath("charts"));
        };
    const double zip_share = req.zip ? 0.1 : 0.0;
    QuantizeExportOptions o;
    o.model_path = session.dir.toStdString();
    o.out_dir = out_dir;
    o.calib = session.calib;  // the same calibration (and cache) as the session: no recomputation
    o.profile = profile;
    o.format = parse_base_format(req.base_format.toStdString());
    o.adapter_dtype = req.adapter_dtype == "float32" ? torch::kFloat32 : torch::kFloat16;
    o.write_adapter = req.adapter;
    o.write_base = req.base;
    o.write_profile = req.profile;
    o.write_report = req.report;
    o.add_files = add_files;
    run_quantize_export(o, progress.slice(0.0, 1.0 - zip_share));
    if (req.zip) {
#ifdef CLOQ_HAVE_ZIP
        zip::write_zip_bundle(QFileInfo(req.zip_path).absoluteFilePath().toStdString(), out_dir,
                              QFileInfo(req.folder).fileName().toStdString(), progress.slice(1.0 - zip_share, 1.0));
#else
        throw Error(req.zip_path.toStdString() + ": this build has no zip support (QuaZip); the folder was written");
#endif
    }
    progress(1.0, "done");
}

}  // namespace cloq::ui

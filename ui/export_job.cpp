#include "export_job.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTabWidget>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "chart_panel.h"
#include "cloq/base/error.h"
#include "cloq/export/gptq_checkpoint.h"
#include "cloq/export/gptq_pack.h"
#include "main_window.h"
#include "model_session.h"
#include "overview_view.h"
#include "studio_options.h"

#include "cloq/pipeline/quantize_pipeline.h"
#ifdef CLOQ_HAVE_ZIP
#include "zip_bundle.h"
#endif

namespace cloq::ui {

std::map<std::string, std::string> export_float_modules(const ModelSession& session, const ResolvedProfile& profile,
                                                        const QString& base_format) {
    std::map<std::string, std::string> out;
    const bool gptq = parse_base_format(base_format.toStdString()) != BaseFormat::Fp16;
    for (const LinearLayer& l : session.layers) {
        std::string why;
        if (profile.is_skipped(l.name()))
            out[l.name()] = "skipped by the profile";
        else if (gptq && !gptq_packable(l.out, l.in, &why))
            out[l.name()] = why + " (GPTQ loaders need 32 | in, out)";
    }
    return out;
}

QString export_summary(const ModelSession& session, const ResolvedProfile& profile, const QString& base_format) {
    // Settings per module kind, in model order of first appearance; "mixed" where layers of a kind differ.
    std::vector<std::string> kinds;
    std::map<std::string, std::set<std::string>> per_kind;
    const auto floats = export_float_modules(session, profile, base_format);
    for (const LinearLayer& l : session.layers) {
        const std::string kind = l.short_name();
        if (!per_kind.count(kind)) kinds.push_back(kind);
        if (floats.count(l.name())) continue;
        const LayerSettings& s = profile.settings_for(l.name());
        const int rank = static_cast<int>(std::min<int64_t>(s.rank, std::min(l.out, l.in)));
        per_kind[kind].insert(std::to_string(s.quant.bits) + "-bit, group " +
                              (s.quant.group < 0 ? std::string("chan") : std::to_string(s.quant.group)) + ", rank " +
                              std::to_string(rank) + ", " + to_string(s.split));
    }
    QStringList lines;
    for (const std::string& k : kinds) {
        const auto& set = per_kind[k];
        QString v = set.empty()       ? QString("all in float")
                    : set.size() == 1 ? QString::fromStdString(*set.begin())
                                      : QString("mixed (%1 settings)").arg(set.size());
        lines << QString("%1: %2").arg(QString::fromStdString(k), v);
    }
    if (floats.empty()) {
        lines << QString("Every one of the %1 modules is quantized.").arg(session.layers.size());
    } else {
        // Group the reasons: "15 modules kept in float: in_features 172 … (mlp.*)".
        std::map<std::string, std::vector<std::string>> by_reason;
        for (const auto& [name, why] : floats) by_reason[why].push_back(name);
        lines << QString("%1 of %2 modules kept in float:").arg(floats.size()).arg(session.layers.size());
        for (const auto& [why, names] : by_reason) {
            std::set<std::string> kinds_of;
            for (const std::string& n : names) kinds_of.insert(n.substr(n.rfind('.') + 1));
            QStringList ks;
            for (const std::string& k : kinds_of) ks << QString::fromStdString(k);
            lines << QString("  %1 × %2 — %3").arg(names.size()).arg(ks.join("/"), QString::fromStdString(why));
        }
        lines << "Their adapters start at zero on the float weight; the perplexity of the overview quantizes every "
                 "module, so it is not the exported model's.";
    }
    return lines.join('\n');
}

QStringList render_charts(MainWindow* window, const QString& dir, const QString& format) {
    QStringList written;
    if (!QDir().mkpath(dir)) throw Error(dir.toStdString() + ": cannot create the charts folder");
    const QStringList suffixes = chart_suffixes(format);
    QTabWidget* tabs = window->tabs();
    const QStringList names = tab_names();
    const int shown = tabs->currentIndex();
    for (int i = 0; i < tabs->count() && i < names.size(); ++i) {
        // The playground is not about this model; the overview is drawn from the export's own report.
        // The budget tab plans settings; it is not a picture of the exported ones.
        if (names[i] == "playground" || names[i] == "overview" || names[i] == "budget") continue;
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

QStringList chart_suffixes(const QString& format) {
    QStringList suffixes;
    if (format == "png" || format == "both") suffixes << "png";
    if (format == "svg" || format == "both") suffixes << "svg";
    if (suffixes.isEmpty()) throw Error("chart format '" + format.toStdString() + "' is not png, svg or both");
    return suffixes;
}

QVector<LayerRow> rows_from_report(const std::string& report_path) {
    const nlohmann::json r = nlohmann::json::parse(std::ifstream(report_path), nullptr, /*allow_exceptions=*/false);
    if (!r.is_object() || !r.contains("modules")) throw Error(report_path + ": not an export report");
    QVector<LayerRow> rows;
    for (const auto& m : r["modules"]) {
        LayerRow row;
        row.name = QString::fromStdString(m.value("module", std::string()));
        row.block = m.value("layer", 0);
        row.kind = row.name.section('.', -1);
        row.out = m.value("out", int64_t(0));
        row.in = m.value("in", int64_t(0));
        const auto& st = m["settings"];
        row.settings.quant.bits = st.value("bits", 0);
        row.settings.quant.group = st.value("group", 0);
        row.settings.rank = st.value("rank", 0);
        row.metrics_settings = row.settings;
        row.skipped = !m.value("quantized", false);
        const auto& mt = m["metrics"];
        auto metric = [&](const char* k) {
            MethodMetrics x;
            if (mt.contains(k)) {
                x.fro_rel = mt[k].value("fro_rel", 0.0);
                x.valid = true;
            }
            return x;
        };
        row.cloq = metric(st.value("init", std::string("cloq")).c_str());
        row.zero = metric("zero");
        row.loftq = metric("loftq");
        row.has_metrics = !row.skipped && row.cloq.valid;
        rows.append(row);
    }
    return rows;
}

QStringList render_report_overview(const QVector<LayerRow>& rows, QSize size, const QString& dir,
                                   const QString& format) {
    if (!QDir().mkpath(dir)) throw Error(dir.toStdString() + ": cannot create the charts folder");
    OverviewView view;
    view.setAttribute(Qt::WA_DontShowOnScreen);
    view.resize(size);
    view.show();
    view.setRows(rows);
    QCoreApplication::processEvents();
    QStringList written;
    for (const QString& suffix : chart_suffixes(format)) {
        const QString path = QDir(dir).absoluteFilePath("overview." + suffix);
        save_widget_image(&view, path);
        written << path;
    }
    // The numbers the image draws, for a reader (and the tests) to check against report.json.
    nlohmann::ordered_json drawn = nlohmann::ordered_json::array();
    for (const LayerRow& r : rows)
        if (r.current())
            drawn.push_back({{"name", r.name.toStdString()},
                             {"bits", r.settings.quant.bits},
                             {"group", r.settings.quant.group},
                             {"rank", r.settings.rank},
                             {"zero_fro_rel", r.zero.fro_rel},
                             {"loftq_fro_rel", r.loftq.fro_rel},
                             {"cloq_fro_rel", r.cloq.fro_rel}});
    const QString json = QDir(dir).absoluteFilePath("overview.json");
    write_json_file_atomic(json.toStdString(),
                           nlohmann::ordered_json{{"layers", drawn}, {"caption", view.caption().toStdString()}});
    written << json;
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
                const QString& charts_dir, const Progress& progress,
                const std::function<void(const std::string&, const Progress&)>& before_commit) {
    if (req.folder.isEmpty()) throw Error("export: choose an output folder");
    const std::string out_dir = QFileInfo(req.folder).absoluteFilePath().toStdString();
    std::function<void(const std::string&)> add_files;
    if (req.charts && !charts_dir.isEmpty())
        add_files = [charts_dir, before_commit, progress](const std::string& temp_out) {
            copy_folder(charts_dir, QDir(QString::fromStdString(temp_out)).absoluteFilePath("charts"));
            if (before_commit) before_commit(temp_out, progress);
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

// What an export writes and the background work that writes it (through core's exporters).
#pragma once
#include <QSize>
#include <QString>
#include <QStringList>
#include <QVector>
#include <functional>
#include <map>
#include <string>

#include "cloq/base/progress.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"
#include "layer_table_model.h"

namespace cloq::ui {

class ModelSession;
class MainWindow;

struct ExportRequest {
    QString folder;                // OUT: created atomically; must not exist (or be empty)
    bool adapter = true;           // OUT/adapter (PEFT)
    bool base = true;              // OUT/base
    QString base_format = "gptq";  // gptq | gptq_v2 | fp16
    QString adapter_dtype = "float16";
    bool profile = true;           // OUT/profile.json
    bool report = true;            // OUT/report.json + report.csv
    bool charts = true;            // OUT/charts/<tab>.<fmt> for the selected layer
    QString chart_format = "png";  // png | svg | both
    bool zip = false;
    QString zip_path;  // OUT.zip by default
};

// Modules the export keeps in float, each with the reason, by the pipeline's own rule: skipped by the profile, or
// (GPTQ base formats) a shape the GPTQ loaders cannot pack.
std::map<std::string, std::string> export_float_modules(const ModelSession& session, const ResolvedProfile& profile,
                                                        const QString& base_format);

// What an export of these settings writes, for the export dialog: bits / group / rank / split per module kind
// (or "mixed"), and the modules kept in float with the reason. Plain text, one item per line.
QString export_summary(const ModelSession& session, const ResolvedProfile& profile, const QString& base_format);

// Renders the chart tabs of `window` for its current layer into `dir` (UI thread). Returns the files written. The
// overview is not among them: render_report_overview draws it from the export's own report.
QStringList render_charts(MainWindow* window, const QString& dir, const QString& format);
QStringList chart_suffixes(const QString& format);  // "png" | "svg" | "both"; throws cloq::Error otherwise

// The explorer rows an export's report.json describes: its settings and metrics per module (float modules skipped).
QVector<LayerRow> rows_from_report(const std::string& report_path);
// Draws those rows as the Overview tab does, offscreen at `size`, into DIR/overview.<fmt>, and writes the numbers
// it drew to DIR/overview.json (UI thread): the picture is the report, never an older state of the explorer.
QStringList render_report_overview(const QVector<LayerRow>& rows, QSize size, const QString& dir,
                                   const QString& format);

// The background part: quantize + init every layer with its settings and write the selected outputs into
// request.folder (chart files already rendered into `charts_dir` are moved in), then the zip. Throws
// cloq::Error / cloq::Cancelled; on failure nothing is left at request.folder.
// `before_commit` (with charts) runs on the worker thread once OUT's temporary folder holds everything but is not
// yet renamed into place: where the overview is drawn from the written report.json.
void run_export(const ModelSession& session, const SettingsProfile& profile, const ExportRequest& request,
                const QString& charts_dir, const Progress& progress,
                const std::function<void(const std::string&, const Progress&)>& before_commit = {});

}  // namespace cloq::ui

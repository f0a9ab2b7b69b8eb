// What an export writes and the background work that writes it (through core's exporters).
#pragma once
#include <QString>
#include <QStringList>
#include <functional>
#include <string>

#include "cloq/base/progress.h"
#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"

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

// Renders the chart tabs of `window` for its current layer into `dir` (UI thread). Returns the files written.
QStringList render_charts(MainWindow* window, const QString& dir, const QString& format);

// The background part: quantize + init every layer with its settings and write the selected outputs into
// request.folder (chart files already rendered into `charts_dir` are moved in), then the zip. Throws
// cloq::Error / cloq::Cancelled; on failure nothing is left at request.folder.
void run_export(const ModelSession& session, const SettingsProfile& profile, const ExportRequest& request,
                const QString& charts_dir, const Progress& progress);

}  // namespace cloq::ui

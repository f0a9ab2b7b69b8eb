#include "export_dialog.h"

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QTemporaryDir>
#include <QToolButton>
#include <QVBoxLayout>
#include <chrono>
#include <future>

#include "background_job.h"
#include "cloq/base/error.h"
#include "layer_table_model.h"
#include "main_window.h"
#include "model_session.h"
#include "overview_view.h"
#include "session_controller.h"

namespace cloq::ui {

ExportDialog::ExportDialog(MainWindow* window) : QDialog(window), window_(window) {
    setWindowTitle("Export");
    setObjectName("exportDialog");
    auto* layout = new QVBoxLayout(this);

    auto* where = new QFormLayout();
    auto* row = new QHBoxLayout();
    folder_ = new QLineEdit(this);
    folder_->setObjectName("exportFolder");
    folder_->setToolTip(
        "Output folder OUT (must not exist yet; it is written to a temporary sibling and renamed "
        "when complete, so a failed or cancelled export leaves nothing behind)");
    auto* browse = new QToolButton(this);
    browse->setText("…");
    browse->setToolTip("Choose the output folder");
    row->addWidget(folder_, 1);
    row->addWidget(browse);
    // A row holding a layout gets no buddy from addRow, so its mnemonic would show as a literal "&".
    auto* folderLabel = new QLabel("&Output folder:");
    folderLabel->setBuddy(folder_);
    where->addRow(folderLabel, row);
    layout->addLayout(where);

    auto* what = new QGroupBox("What to write", this);
    auto* form = new QFormLayout(what);
    adapter_ = new QCheckBox("LoRA adapter (PEFT: adapter_config.json + adapter_model.safetensors)", what);
    adapter_->setToolTip(
        "CLoQ's lora_A / lora_B for every layer; lora_A is divided by alpha/r so PEFT's scaling "
        "reproduces the solved weight exactly");
    dtype_ = new QComboBox(what);
    dtype_->addItems({"float16", "float32"});
    dtype_->setToolTip("Data type of the saved adapter factors");
    auto* arow = new QHBoxLayout();
    arow->addWidget(adapter_, 1);
    arow->addWidget(dtype_);
    form->addRow(arow);
    base_ = new QCheckBox("Quantized base model", what);
    base_->setToolTip("The quantized weights the adapter sits on, loadable by transformers / GPTQ loaders");
    baseFormat_ = new QComboBox(what);
    baseFormat_->addItem("GPTQ checkpoint (gptq)", "gptq");
    baseFormat_->addItem("GPTQ checkpoint (gptq_v2)", "gptq_v2");
    baseFormat_->addItem("dequantized float16", "fp16");
    baseFormat_->setToolTip(
        "gptq stores zero−1 (AutoGPTQ; zero points are kept ≥ 1 so it can), gptq_v2 stores the "
        "zero point (GPTQModel); float16 is the plain dequantized model");
    auto* brow = new QHBoxLayout();
    brow->addWidget(base_, 1);
    brow->addWidget(baseFormat_);
    form->addRow(brow);
    profile_ = new QCheckBox("Settings profile (profile.json)", what);
    profile_->setToolTip("The model defaults and per-layer settings, reusable with `cloq quantize --profile`");
    form->addRow(profile_);
    report_ = new QCheckBox("Per-layer report (report.json + report.csv)", what);
    report_->setToolTip("Discrepancies of zero / SVD / LoftQ / CLoQ and timings for every layer");
    form->addRow(report_);
    charts_ = new QCheckBox("Chart images of the selected layer", what);
    charts_->setToolTip("Every chart tab of the current layer and the overview, into OUT/charts/");
    chartFormat_ = new QComboBox(what);
    chartFormat_->addItem("PNG", "png");
    chartFormat_->addItem("SVG", "svg");
    chartFormat_->addItem("PNG + SVG", "both");
    chartFormat_->setToolTip("Image format of the charts");
    auto* crow = new QHBoxLayout();
    crow->addWidget(charts_, 1);
    crow->addWidget(chartFormat_);
    form->addRow(crow);
    zipOn_ = new QCheckBox("Zip bundle of everything", what);
    zipOn_->setToolTip("One .zip with the whole output folder (next to it by default)");
    zip_ = new QLineEdit(what);
    zip_->setPlaceholderText("OUT.zip");
    zip_->setToolTip("Path of the zip bundle");
    auto* zrow = new QHBoxLayout();
    zrow->addWidget(zipOn_);
    zrow->addWidget(zip_, 1);
    form->addRow(zrow);
    layout->addWidget(what);

    // What the settings export to, per module kind, and which modules stay float and why: read before writing.
    summary_ = new QLabel(this);
    summary_->setObjectName("exportSummary");
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(summary_);

    auto* profRow = new QHBoxLayout();
    loadProfile_ = new QPushButton("&Load profile…", this);
    loadProfile_->setToolTip("Replace the model's settings by those of a profile file");
    saveProfile_ = new QPushButton("&Save profile…", this);
    saveProfile_->setToolTip("Write the current settings to a profile file");
    profRow->addWidget(loadProfile_);
    profRow->addWidget(saveProfile_);
    profRow->addStretch(1);
    layout->addLayout(profRow);

    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    status_->setObjectName("exportStatus");
    layout->addWidget(progress_);
    layout->addWidget(status_);

    auto* buttons = new QDialogButtonBox(this);
    export_ = buttons->addButton("&Export", QDialogButtonBox::AcceptRole);
    export_->setToolTip("Start writing (in the background)");
    cancel_ = buttons->addButton("&Cancel export", QDialogButtonBox::ActionRole);
    cancel_->setToolTip("Stop the running export; nothing is left at the output folder");
    auto* close = buttons->addButton(QDialogButtonBox::Close);
    close->setToolTip("Close this dialog (a running export continues in the background)");
    layout->addWidget(buttons);

    for (QCheckBox* c : {adapter_, base_, profile_, report_, charts_, zipOn_}) {
        c->setChecked(c != zipOn_);
        connect(c, &QCheckBox::toggled, this, &ExportDialog::updateEnabled);
    }
    connect(browse, &QToolButton::clicked, this, [this] {
        const QString d = QFileDialog::getSaveFileName(this, "Output folder", folder_->text(), QString(), nullptr,
                                                       QFileDialog::ShowDirsOnly);
        if (!d.isEmpty()) folder_->setText(d);
    });
    connect(folder_, &QLineEdit::textChanged, this, [this](const QString& t) {
        zip_->setPlaceholderText(t.isEmpty() ? "OUT.zip" : t + ".zip");
        updateEnabled();
    });
    connect(export_, &QPushButton::clicked, this, &ExportDialog::startExport);
    connect(baseFormat_, &QComboBox::currentIndexChanged, this, &ExportDialog::updateSummary);
    connect(window_->controller(), &SessionController::settingsChanged, this, &ExportDialog::updateSummary);
    connect(window_->controller(), &SessionController::sessionOpened, this, &ExportDialog::updateSummary);
    // An export with charts waits for the explorer to be current (the charts must show the exported settings).
    connect(window_->controller(), &SessionController::analysisFinished, this, [this](bool complete) {
        if (!waitingForAnalysis_) return;
        waitingForAnalysis_ = false;
        if (complete) {
            startExport();
        } else {
            status_->setText(
                "The analysis stopped before every layer was current, so the charts could not match "
                "the export: nothing was written. Export again to retry, or untick the charts.");
            Q_EMIT exportFinished(false, status_->text());
            updateEnabled();
        }
    });
    connect(cancel_, &QPushButton::clicked, this, [this] {
        if (waitingForAnalysis_) {
            waitingForAnalysis_ = false;
            status_->setText("Export cancelled; nothing was written.");
            Q_EMIT exportFinished(false, status_->text());
            updateEnabled();
        }
        if (job_) job_->cancel();
    });
    connect(close, &QPushButton::clicked, this, &QDialog::reject);
    connect(loadProfile_, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, "Load settings profile", QString(), "Profiles (*.json)");
        if (f.isEmpty()) return;
        try {
            window_->loadProfile(f);
            status_->setText("Loaded " + f);
        } catch (const std::exception& e) {
            QMessageBox::warning(this, "Load settings profile", QString::fromStdString(cloq::error_message(e)));
        }
    });
    connect(saveProfile_, &QPushButton::clicked, this, [this] {
        const QString f =
            QFileDialog::getSaveFileName(this, "Save settings profile", "profile.json", "Profiles (*.json)");
        if (f.isEmpty()) return;
        try {
            window_->controller()->saveProfile(f);
            status_->setText("Saved " + f);
        } catch (const std::exception& e) {
            QMessageBox::warning(this, "Save settings profile", QString::fromStdString(cloq::error_message(e)));
        }
    });
    if (window_->session())
        folder_->setText(QDir::home().absoluteFilePath(QFileInfo(window_->session()->dir).fileName() + "-cloq"));
    updateEnabled();
    updateSummary();
    resize(620, 560);
}

void ExportDialog::showEvent(QShowEvent* e) {
    // A dialog reopened after a finished (or failed) export starts clean: the old outcome is not this export's.
    if (!isRunning() && !waitingForAnalysis_) {
        status_->clear();
        progress_->setValue(0);
    }
    updateSummary();
    QDialog::showEvent(e);
}

void ExportDialog::updateSummary() {
    if (!window_->session()) {
        summary_->clear();
        return;
    }
    const QString base = baseFormat_->currentData().toString();
    summary_->setText("<b>Will be written:</b><br>" +
                      export_summary(*window_->session(), window_->controller()->resolvedProfile(), base)
                          .toHtmlEscaped()
                          .replace("\n", "<br>")
                          .replace("  ", "&nbsp;&nbsp;"));
}

ExportRequest ExportDialog::request() const {
    ExportRequest r;
    r.folder = folder_->text().trimmed();
    r.adapter = adapter_->isChecked();
    r.adapter_dtype = dtype_->currentText();
    r.base = base_->isChecked();
    r.base_format = baseFormat_->currentData().toString();
    r.profile = profile_->isChecked();
    r.report = report_->isChecked();
    r.charts = charts_->isChecked();
    r.chart_format = chartFormat_->currentData().toString();
    r.zip = zipOn_->isChecked();
    r.zip_path = zip_->text().trimmed().isEmpty() ? r.folder + ".zip" : zip_->text().trimmed();
    return r;
}

void ExportDialog::setRequest(const ExportRequest& r) {
    folder_->setText(r.folder);
    adapter_->setChecked(r.adapter);
    dtype_->setCurrentText(r.adapter_dtype);
    base_->setChecked(r.base);
    baseFormat_->setCurrentIndex(std::max(0, baseFormat_->findData(r.base_format)));
    profile_->setChecked(r.profile);
    report_->setChecked(r.report);
    charts_->setChecked(r.charts);
    chartFormat_->setCurrentIndex(std::max(0, chartFormat_->findData(r.chart_format)));
    zipOn_->setChecked(r.zip);
    zip_->setText(r.zip_path);
}

bool ExportDialog::isRunning() const { return job_ && job_->isRunning(); }
QString ExportDialog::statusText() const { return status_->text(); }
QString ExportDialog::summaryText() const {
    return window_->session() ? export_summary(*window_->session(), window_->controller()->resolvedProfile(),
                                               baseFormat_->currentData().toString())
                              : QString();
}

void ExportDialog::updateEnabled() {
    const bool running = isRunning();
    baseFormat_->setEnabled(base_->isChecked() && !running);
    dtype_->setEnabled(adapter_->isChecked() && !running);
    chartFormat_->setEnabled(charts_->isChecked() && !running);
    zip_->setEnabled(zipOn_->isChecked() && !running);
    export_->setEnabled(!running && !waitingForAnalysis_ && !folder_->text().trimmed().isEmpty() && window_->session());
    cancel_->setEnabled(running || waitingForAnalysis_);
}

void ExportDialog::startExport() {
    if (isRunning() || !window_->session()) return;
    const ExportRequest req = request();
    if (QFileInfo::exists(req.folder) && !QDir(req.folder).isEmpty()) {
        status_->setText(req.folder + " already exists and is not empty: choose another output folder.");
        Q_EMIT exportFinished(false, status_->text());
        return;
    }
    SessionController* controller = window_->controller();
    if (req.charts && controller->layers()->currentCount() < controller->layers()->analysableCount()) {
        // Rows are still being recomputed for the current settings: the charts would show older numbers.
        waitingForAnalysis_ = true;
        status_->setText(QString("Waiting for %1 layers to be recomputed, so that the charts show the exported "
                                 "settings…")
                             .arg(controller->layers()->analysableCount() - controller->layers()->currentCount()));
        updateEnabled();
        controller->analyzeAll();  // no-op while a pass is running; starts one when none is
        return;
    }
    const ResolvedProfile resolved = controller->resolvedProfile();
    // Charts are widgets: render them here, on the UI thread, into a scratch folder the job moves into OUT.
    auto scratch = std::make_shared<QTemporaryDir>();
    QString chartsDir;
    if (req.charts) {
        chartsDir = scratch->path();
        try {
            render_charts(window_, chartsDir, req.chart_format);
            if (!req.report) {
                // No report.json to draw from: the overview of the (current) explorer rows, with the modules the
                // export keeps in float left out as it leaves them.
                QVector<LayerRow> rows = controller->layers()->layers();
                const auto floats = export_float_modules(*window_->session(), resolved, req.base_format);
                for (LayerRow& r : rows)
                    if (floats.count(r.name.toStdString())) r.skipped = true;
                render_report_overview(rows, window_->overviewView()->size(), chartsDir, req.chart_format);
            }
        } catch (const std::exception& e) {
            status_->setText(QString::fromStdString(cloq::error_message(e)));
            Q_EMIT exportFinished(false, status_->text());
            return;
        }
    }
    auto session = window_->sessionPtr();
    const SettingsProfile profile = make_profile(resolved);
    auto* job = new BackgroundJob("Export", this);
    job_ = job;
    connect(job, &BackgroundJob::progressed, this, [this](double f, const QString& step) {
        progress_->setValue(static_cast<int>(f * 1000));
        status_->setText(step);
    });
    connect(job, &BackgroundJob::succeeded, this, [this, req] {
        progress_->setValue(1000);
        status_->setText("Written to " + req.folder + (req.zip ? " and " + req.zip_path : QString()));
        Q_EMIT exportFinished(true, status_->text());
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        status_->setText("Export cancelled; nothing was written.");
        Q_EMIT exportFinished(false, status_->text());
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& m) {
        status_->setText("Export failed: " + m);
        Q_EMIT exportFinished(false, status_->text());
    });
    connect(job, &BackgroundJob::finished, this, [this] { updateEnabled(); });
    connect(job, &BackgroundJob::finished, job, &QObject::deleteLater);
    status_->setText("Exporting…");
    progress_->setValue(0);
    // With the report written, the overview is drawn from it: on the UI thread (widgets), while the worker waits
    // before the commit, polling for cancellation so a closing window can never deadlock with it.
    std::function<void(const std::string&, const Progress&)> before_commit;
    const QSize overviewSize = window_->overviewView()->size();
    if (req.charts && req.report)
        before_commit = [overviewSize, format = req.chart_format](const std::string& temp_out, const Progress& p) {
            auto result = std::make_shared<std::promise<std::string>>();
            std::future<std::string> done = result->get_future();
            const QString out = QString::fromStdString(temp_out);
            QMetaObject::invokeMethod(
                qApp,
                [result, out, overviewSize, format] {
                    try {
                        render_report_overview(rows_from_report((out + "/report.json").toStdString()), overviewSize,
                                               out + "/charts", format);
                        result->set_value({});
                    } catch (const std::exception& e) {
                        result->set_value(cloq::error_message(e));
                    }
                },
                Qt::QueuedConnection);
            while (done.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready)
                p.cancel.throw_if_cancelled();
            if (const std::string err = done.get(); !err.empty()) throw Error(err);
        };
    job->start([session, profile, req, chartsDir, scratch, before_commit](const Progress& p) {
        run_export(*session, profile, req, chartsDir, p, before_commit);
    });
    updateEnabled();
}

}  // namespace cloq::ui

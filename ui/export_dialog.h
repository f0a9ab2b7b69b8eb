// File > Export: the adapter (PEFT), the quantized base (GPTQ checkpoint or dequantized float16), the settings
// profile, the per-layer report (JSON + CSV), chart images (PNG/SVG) and a zip bundle — the same exporters as
// `cloq quantize`, run in the background with progress and cancel. Profiles can be loaded and saved here too.
#pragma once
#include <QDialog>
#include <QPointer>

#include "export_job.h"

class QCheckBox;
class QComboBox;
class QDialogButtonBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;

namespace cloq::ui {

class BackgroundJob;
class MainWindow;

class ExportDialog : public QDialog {
    Q_OBJECT
public:
    explicit ExportDialog(MainWindow* window);
    ExportRequest request() const;
    void setRequest(const ExportRequest& r);
    // Starts the export (charts are rendered here first, the rest runs in the background).
    void startExport();
    bool isRunning() const;
    BackgroundJob* job() const { return job_; }
    QString statusText() const;
    QString summaryText() const;

    QLineEdit* folderEdit() const { return folder_; }
    QPushButton* exportButton() const { return export_; }
    QPushButton* cancelButton() const { return cancel_; }

Q_SIGNALS:
    void exportFinished(bool ok, const QString& message);

protected:
    void showEvent(QShowEvent* e) override;

private:
    void updateEnabled();
    void updateSummary();
    bool waitingForAnalysis_ = false;  // charts requested while rows were stale: starts when they are current
    QLabel* summary_ = nullptr;
    MainWindow* window_;
    QLineEdit *folder_ = nullptr, *zip_ = nullptr;
    QCheckBox *adapter_ = nullptr, *base_ = nullptr, *profile_ = nullptr, *report_ = nullptr, *charts_ = nullptr,
              *zipOn_ = nullptr;
    QComboBox *baseFormat_ = nullptr, *chartFormat_ = nullptr, *dtype_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QLabel* status_ = nullptr;
    QPushButton *export_ = nullptr, *cancel_ = nullptr, *loadProfile_ = nullptr, *saveProfile_ = nullptr;
    QPointer<BackgroundJob> job_;
};

}  // namespace cloq::ui

// The first page: open a model folder (dialog, drag and drop, recent list) or the bundled demo, and choose the
// calibration text and size used for opening.
#pragma once
#include <QWidget>

#include "cloq/settings/settings.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;

namespace cloq::ui {

// What a dropped or chosen path opens, the same on the start page and the main window: a model folder or a .gguf
// file as it is; any other file (config.json, a safetensors shard) opens the folder it is in.
QString model_path_of(const QString& path);

class StartPage : public QWidget {
    Q_OBJECT
public:
    explicit StartPage(QWidget* parent = nullptr);

    // Calibration settings for the next open (text path, nsamples, seqlen, seed).
    CalibSettings calibration() const;
    void setCalibration(const CalibSettings& c);
    void setRecentModels(const QStringList& paths);
    void setDemoAvailable(bool available, const QString& description);

    QPushButton* openButton() const { return open_; }
    QPushButton* demoButton() const { return demo_; }
    QListWidget* recentList() const { return recent_; }

Q_SIGNALS:
    void openRequested(const QString& path);  // a folder or .gguf chosen by dialog, drop or recent list
    void openDialogRequested();
    void demoRequested();

protected:
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;

private:
    QPushButton *open_ = nullptr, *demo_ = nullptr;
    QListWidget* recent_ = nullptr;
    QLineEdit* text_ = nullptr;
    QSpinBox *nsamples_ = nullptr, *seqlen_ = nullptr, *seed_ = nullptr;
    QLabel* demoNote_ = nullptr;
};

}  // namespace cloq::ui

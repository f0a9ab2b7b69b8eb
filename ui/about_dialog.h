// Help > About: versions of CLoQ Studio, Qt, LibTorch and the compiler, and what the application does.
#pragma once
#include <QDialog>

namespace cloq::ui {

class AboutDialog : public QDialog {
    Q_OBJECT
public:
    explicit AboutDialog(QWidget* parent = nullptr);
    static QString versionsText();  // plain text, one component per line
};

}  // namespace cloq::ui

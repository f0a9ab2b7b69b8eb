#include "export_job.h"

#include <QDir>
#include <QFileInfo>
#include <QTabWidget>

#include "chart_panel.h"
#include "cloq/error.h"
#include "main_window.h"
#include "model_session.h"
#include "studio_options.h"

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

}  // namespace cloq::ui

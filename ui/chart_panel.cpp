#include "chart_panel.h"

#include <QEvent>
#include <QFileInfo>
#include <QPainter>
#include <QSvgGenerator>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>

#include "cloq/error.h"

namespace cloq::ui {

void ChartPanel::changeEvent(QEvent* event) {
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::ApplicationPaletteChange) restyle();
}

QChartView* ChartPanel::makeView(QChart* chart, QWidget* parent) {
    auto* view = new QChartView(chart, parent);
    view->setRenderHint(QPainter::Antialiasing);
    view->setMinimumSize(200, 150);
    view->setFocusPolicy(Qt::NoFocus);
    return view;
}

void save_widget_image(QWidget* widget, const QString& path) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix == "png") {
        if (!widget->grab().save(path, "PNG"))
            throw Error(path.toStdString() + ": cannot write the PNG image (is the folder writable?)");
        return;
    }
    if (suffix == "svg") {
        QSvgGenerator gen;
        gen.setFileName(path);
        gen.setSize(widget->size());
        gen.setViewBox(QRect(QPoint(0, 0), widget->size()));
        gen.setTitle(widget->windowTitle().isEmpty() ? "CLoQ Studio chart" : widget->windowTitle());
        gen.setDescription("Exported by CLoQ Studio");
        QPainter painter;
        if (!painter.begin(&gen))
            throw Error(path.toStdString() + ": cannot write the SVG image (is the folder writable?)");
        widget->render(&painter, QPoint(), QRegion(), QWidget::DrawChildren);
        painter.end();
        if (!QFileInfo(path).exists() || QFileInfo(path).size() == 0)
            throw Error(path.toStdString() + ": the SVG image could not be written");
        return;
    }
    throw Error(path.toStdString() + ": unknown image type '" + suffix.toStdString() + "' (use .png or .svg)");
}

QString format_number(double v, int precision) {
    if (v == 0) return "0";
    const double a = std::abs(v);
    if (a >= 1e-3 && a < 1e5) return QString::number(v, 'g', precision);
    return QString::number(v, 'e', precision - 1);
}

}  // namespace cloq::ui

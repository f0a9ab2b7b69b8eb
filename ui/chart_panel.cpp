#include "chart_panel.h"

#include <QBoxLayout>
#include <QEvent>
#include <QFileInfo>
#include <QLabel>
#include <QPainter>
#include <QScrollArea>
#include <QScrollBar>
#include <QSvgGenerator>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QValueAxis>
#include <cmath>

#include "cloq/base/error.h"

namespace cloq::ui {

void ChartPanel::changeEvent(QEvent* event) {
    QWidget::changeEvent(event);
    if (event->type() == QEvent::PaletteChange || event->type() == QEvent::ApplicationPaletteChange) restyle();
}

QChartView* ChartPanel::makeView(QChart* chart, QWidget* parent) {
    auto* view = new QChartView(chart, parent);
    view->setRenderHint(QPainter::Antialiasing);
    view->setMinimumSize(120, 110);  // small: the playground fits three charts beside its controls
    view->setFocusPolicy(Qt::NoFocus);
    return view;
}

QLabel* ChartPanel::addCaption(QBoxLayout* layout) {
    auto* caption = new QLabel(this);
    caption->setWordWrap(true);
    caption->setTextFormat(Qt::RichText);
    layout->addWidget(caption);
    return caption;
}

void ChartPanel::addControlsRow(QBoxLayout* layout, QLayout* row) {
    auto* content = new QWidget();
    content->setLayout(row);
    row->setContentsMargins(0, 0, 0, 0);
    auto* area = new QScrollArea(this);
    area->setWidget(content);
    area->setWidgetResizable(true);
    area->setFrameShape(QFrame::NoFrame);
    area->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    area->setHorizontalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    area->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    // Room for the scroll bar too, so the row is never cut when the bar appears.
    area->setFixedHeight(content->sizeHint().height() + area->horizontalScrollBar()->sizeHint().height());
    layout->addWidget(area);
}

void ChartPanel::attachAxes(QChart* chart, QAbstractAxis* x, QAbstractAxis* y) {
    chart->addAxis(x, Qt::AlignBottom);
    chart->addAxis(y, Qt::AlignLeft);
    for (QAbstractSeries* s : chart->series()) {
        s->attachAxis(x);
        s->attachAxis(y);
    }
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

void set_integer_axis(QValueAxis* axis, int max, int max_ticks) {
    max = std::max(1, max);
    int step = 1;
    for (int mag = 1;; mag *= 10) {
        bool found = false;
        for (int m : {1, 2, 5})
            if (max / (m * mag) <= max_ticks) {
                step = m * mag;
                found = true;
                break;
            }
        if (found) break;
    }
    axis->setRange(0, max);
    axis->setTickType(QValueAxis::TicksDynamic);
    axis->setTickAnchor(0);
    axis->setTickInterval(step);
    axis->setLabelFormat("%d");
}

void set_round_ticks_axis(QValueAxis* axis, double lo, double hi, int max_ticks) {
    if (!(hi > lo)) hi = lo + 1;
    const double raw = (hi - lo) / std::max(1, max_ticks);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = 10 * mag;
    for (double m : {1.0, 2.0, 5.0})
        if (m * mag >= raw) {
            step = m * mag;
            break;
        }
    axis->setRange(lo, hi);
    axis->setTickType(QValueAxis::TicksDynamic);
    axis->setTickAnchor(0);
    axis->setTickInterval(step);
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    axis->setLabelFormat(QString("%.%1f").arg(decimals));
}

QString format_number(double v, int precision) {
    if (v == 0) return "0";
    const double a = std::abs(v);
    if (a >= 1e-3 && a < 1e5) return QString::number(v, 'g', precision);
    return QString::number(v, 'e', precision - 1);
}

}  // namespace cloq::ui

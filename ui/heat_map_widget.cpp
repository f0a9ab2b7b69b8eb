#include "heat_map_widget.h"

#include <QHelpEvent>
#include <QPainter>
#include <QToolTip>
#include <algorithm>
#include <cmath>

#include "chart_panel.h"

namespace cloq::ui {

HeatMapWidget::HeatMapWidget(QWidget* parent) : QWidget(parent) {
    setObjectName("groupErrorHeatMap");
    setToolTip("RMS of W − Q per quantization group (columns) and output rows (rows); hover a cell for its value");
    setMouseTracking(true);
}

QColor HeatMapWidget::viridis(double t) {
    // Viridis sampled at 9 points (matplotlib), linearly interpolated: perceptually uniform, colour-blind safe.
    static const double k[9][3] = {{0.267, 0.005, 0.329}, {0.283, 0.141, 0.458}, {0.254, 0.265, 0.530},
                                   {0.207, 0.372, 0.553}, {0.164, 0.471, 0.558}, {0.128, 0.567, 0.551},
                                   {0.135, 0.659, 0.518}, {0.478, 0.821, 0.318}, {0.993, 0.906, 0.144}};
    t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * 8.0;
    const int i = std::min(static_cast<int>(t), 7);
    const double f = t - i;
    auto mix = [&](int c) { return (k[i][c] * (1 - f) + k[i + 1][c] * f); };
    return QColor::fromRgbF(static_cast<float>(mix(0)), static_cast<float>(mix(1)), static_cast<float>(mix(2)));
}

void HeatMapWidget::clear() {
    grid_ = {};
    image_ = QImage();
    update();
}

void HeatMapWidget::setGrid(const GroupErrorGrid& grid) {
    grid_ = grid;
    if (grid.rows <= 0 || grid.cols <= 0 || grid.values.size() != size_t(grid.rows) * grid.cols) {
        clear();
        return;
    }
    const auto [mn, mx] = std::minmax_element(grid.values.begin(), grid.values.end());
    lo_ = *mn;
    hi_ = *mx;
    image_ = QImage(grid.cols, grid.rows, QImage::Format_RGB32);
    const float span = hi_ > lo_ ? hi_ - lo_ : 1.0f;
    for (int r = 0; r < grid.rows; ++r)
        for (int c = 0; c < grid.cols; ++c) image_.setPixelColor(c, r, viridis((grid.at(r, c) - lo_) / span));
    update();
}

QRect HeatMapWidget::plotRect() const {
    const QFontMetrics fm(font());
    const int left = fm.height() * 2 + 6, top = fm.height() + 8, bottom = fm.height() * 2 + 8;
    const int right = fm.horizontalAdvance("0.000e-00") + 40;  // colour bar and its labels
    return QRect(left, top, std::max(10, width() - left - right), std::max(10, height() - top - bottom));
}

void HeatMapWidget::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.fillRect(rect(), palette().color(QPalette::Base));
    const QColor text = palette().color(QPalette::Text);
    p.setPen(text);
    QFont bold = font();
    bold.setBold(true);
    p.setFont(bold);
    const QFontMetrics fm(font());
    p.drawText(QRect(0, 2, width(), fm.height() + 4), Qt::AlignHCenter | Qt::AlignVCenter, "RMS of W − Q per group");
    p.setFont(font());
    const QRect pr = plotRect();
    if (image_.isNull()) {
        p.drawText(pr, Qt::AlignCenter, "no layer analysed yet");
        return;
    }
    p.drawImage(pr, image_);  // nearest-neighbour scaling keeps cell borders crisp
    p.setPen(QPen(palette().color(QPalette::Mid), 1));
    p.drawRect(pr.adjusted(0, 0, -1, -1));
    p.setPen(text);
    // x axis: group index; y axis: output rows
    p.drawText(QRect(pr.left(), pr.bottom() + 2, pr.width(), fm.height()), Qt::AlignLeft, "0");
    p.drawText(QRect(pr.left(), pr.bottom() + 2, pr.width(), fm.height()), Qt::AlignRight,
               QString::number(grid_.cols - 1));
    // Centred under the map but free to use the whole widget width (the map itself may be narrow).
    const int gw = fm.horizontalAdvance(QString("group (%1 columns)").arg(grid_.group_size)) + 4;
    const int gx = std::clamp(pr.center().x() - gw / 2, 0, std::max(0, width() - gw));
    p.drawText(QRect(gx, pr.bottom() + 2 + fm.height(), gw, fm.height()), Qt::AlignHCenter,
               QString("group (%1 columns)").arg(grid_.group_size));
    p.save();
    p.translate(fm.height(), pr.center().y());
    p.rotate(-90);
    const QString ylabel =
        grid_.rows_per_cell > 1 ? QString("output rows (%1 per cell)").arg(grid_.rows_per_cell) : QString("output row");
    p.drawText(QRect(-pr.height() / 2, -fm.height(), pr.height(), fm.height() + 2), Qt::AlignCenter, ylabel);
    p.restore();
    // colour bar
    const QRect bar(pr.right() + 12, pr.top(), 14, pr.height());
    for (int y = 0; y < bar.height(); ++y) {
        p.setPen(viridis(1.0 - double(y) / std::max(1, bar.height() - 1)));
        p.drawLine(bar.left(), bar.top() + y, bar.right(), bar.top() + y);
    }
    p.setPen(text);
    p.drawRect(bar.adjusted(0, 0, -1, -1));
    const int lx = bar.right() + 4;
    p.drawText(QRect(lx, bar.top() - 2, width() - lx, fm.height()), Qt::AlignLeft, format_number(hi_));
    p.drawText(QRect(lx, bar.bottom() - fm.height() + 2, width() - lx, fm.height()), Qt::AlignLeft, format_number(lo_));
}

bool HeatMapWidget::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip && !image_.isNull()) {
        auto* he = static_cast<QHelpEvent*>(e);
        const QRect pr = plotRect();
        if (pr.contains(he->pos())) {
            const int c = std::clamp((he->pos().x() - pr.left()) * grid_.cols / pr.width(), 0, grid_.cols - 1);
            const int r = std::clamp((he->pos().y() - pr.top()) * grid_.rows / pr.height(), 0, grid_.rows - 1);
            QToolTip::showText(he->globalPos(),
                               QString("rows %1–%2, group %3 (columns %4–%5): RMS error %6")
                                   .arg(r * grid_.rows_per_cell)
                                   .arg((r + 1) * grid_.rows_per_cell - 1)
                                   .arg(c)
                                   .arg(c * grid_.group_size)
                                   .arg((c + 1) * grid_.group_size - 1)
                                   .arg(format_number(grid_.at(r, c))),
                               this);
            return true;
        }
    }
    return QWidget::event(e);
}

}  // namespace cloq::ui

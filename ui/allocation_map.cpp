#include "allocation_map.h"

#include <QHelpEvent>
#include <QPainter>
#include <QToolTip>
#include <algorithm>
#include <cmath>
#include <set>

#include "heat_map_widget.h"

namespace cloq::ui {

AllocationMap::AllocationMap(QWidget* parent) : QWidget(parent) {
    setObjectName("allocationMap");
    setToolTip("The plan per module: colour = bit width, number = LoRA rank; hover a cell for its size and objective");
    setMouseTracking(true);
}

QColor AllocationMap::bitsColor(int bits) {
    // Viridis positions far enough apart to tell 2, 3, 4 and 8 bits apart at a glance (and in grey scale).
    switch (bits) {
    case 2:
        return HeatMapWidget::viridis(0.05);
    case 3:
        return HeatMapWidget::viridis(0.40);
    case 4:
        return HeatMapWidget::viridis(0.70);
    case 8:
        return HeatMapWidget::viridis(1.00);
    default:
        return QColor(150, 150, 150);
    }
}

void AllocationMap::clear() {
    blocks_ = 0;
    columns_.clear();
    cells_.clear();
    update();
}

void AllocationMap::setCells(int blocks, const QStringList& columns, const std::vector<AllocationCell>& cells) {
    blocks_ = blocks;
    columns_ = columns;
    cells_ = cells;
    update();
}

QRect AllocationMap::plotRect() const {
    const QFontMetrics fm(font());
    const int left = fm.horizontalAdvance("block 00") + 8, top = fm.height() * 2 + 10;
    const int right = fm.horizontalAdvance("float") + 34;  // the legend
    return QRect(left, top, std::max(10, width() - left - right), std::max(10, height() - top - 6));
}

const AllocationCell* AllocationMap::cellAt(const QPoint& pos) const {
    const QRect pr = plotRect();
    if (!pr.contains(pos) || blocks_ <= 0 || columns_.isEmpty()) return nullptr;
    const int c = std::clamp((pos.x() - pr.left()) * int(columns_.size()) / pr.width(), 0, int(columns_.size()) - 1);
    const int b = std::clamp((pos.y() - pr.top()) * blocks_ / pr.height(), 0, blocks_ - 1);
    for (const AllocationCell& cell : cells_)
        if (cell.block == b && cell.column == c) return &cell;
    return nullptr;
}

void AllocationMap::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.fillRect(rect(), palette().color(QPalette::Base));
    const QColor text = palette().color(QPalette::Text);
    const QFontMetrics fm(font());
    QFont bold = font();
    bold.setBold(true);
    p.setFont(bold);
    p.setPen(text);
    p.drawText(QRect(0, 2, width(), fm.height() + 4), Qt::AlignHCenter | Qt::AlignVCenter,
               QFontMetrics(bold).elidedText("Bits (colour) and rank per module", Qt::ElideRight, width() - 4));
    p.setFont(font());
    const QRect pr = plotRect();
    if (blocks_ <= 0 || columns_.isEmpty()) {
        p.drawText(pr, Qt::AlignCenter, "no plan yet");
        return;
    }
    const double cw = double(pr.width()) / columns_.size(), ch = double(pr.height()) / blocks_;
    for (int c = 0; c < columns_.size(); ++c)
        p.drawText(QRectF(pr.left() + c * cw, pr.top() - fm.height() - 4, cw, fm.height()), Qt::AlignCenter,
                   fm.elidedText(columns_[c], Qt::ElideRight, int(cw)));
    // Label every block when they fit, else every k-th.
    const int step = std::max(1, int(std::ceil(fm.height() / std::max(1.0, ch))));
    for (int b = 0; b < blocks_; b += step)
        p.drawText(QRectF(0, pr.top() + b * ch, pr.left() - 6, ch), Qt::AlignRight | Qt::AlignVCenter,
                   QString::number(b));
    std::set<int> widths;
    const bool numbers = ch >= fm.height() * 0.9 && cw >= fm.horizontalAdvance("128") + 2;
    for (const AllocationCell& cell : cells_) {
        const QRectF r(pr.left() + cell.column * cw, pr.top() + cell.block * ch, cw, ch);
        const QColor col = bitsColor(cell.bits);
        p.fillRect(r, col);
        widths.insert(cell.bits);
        if (numbers) {
            // Dark text on the light end of viridis, light text on the dark end.
            p.setPen(col.lightnessF() > 0.55 ? QColor(20, 20, 20) : QColor(245, 245, 245));
            p.drawText(r, Qt::AlignCenter, cell.bits == 0 ? "—" : QString::number(cell.rank));
        }
    }
    p.setPen(QPen(palette().color(QPalette::Base), 1));
    for (int c = 1; c < columns_.size(); ++c)
        p.drawLine(QPointF(pr.left() + c * cw, pr.top()), QPointF(pr.left() + c * cw, pr.bottom()));
    if (ch >= 4)
        for (int b = 1; b < blocks_; ++b)
            p.drawLine(QPointF(pr.left(), pr.top() + b * ch), QPointF(pr.right(), pr.top() + b * ch));
    // Legend: the widths that occur.
    int y = pr.top();
    const int lx = pr.right() + 10;
    for (int w : widths) {
        p.fillRect(QRect(lx, y + 2, 12, fm.height() - 4), bitsColor(w));
        p.setPen(text);
        p.drawText(QRect(lx + 16, y, width() - lx - 16, fm.height()), Qt::AlignLeft | Qt::AlignVCenter,
                   w == 0 ? QString("float") : QString("%1-bit").arg(w));
        y += fm.height() + 2;
    }
}

bool AllocationMap::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        auto* he = static_cast<QHelpEvent*>(e);
        if (const AllocationCell* c = cellAt(he->pos())) {
            QToolTip::showText(he->globalPos(), c->tooltip, this);
            return true;
        }
    }
    return QWidget::event(e);
}

}  // namespace cloq::ui

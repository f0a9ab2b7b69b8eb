// The Budget tab's per-layer allocation: one row per decoder block, one column per module kind (q k v o gate up
// down), each cell coloured by its bit width (one colour per width, a legend beside) and labelled with its rank.
// Modules kept in float are grey. Drawn by hand like the group-error heat map: Qt Charts has no such grid.
#pragma once
#include <QString>
#include <QStringList>
#include <QWidget>
#include <vector>

namespace cloq::ui {

struct AllocationCell {
    int block = 0;
    int column = 0;  // index into the column names
    int bits = 0;    // 0: kept in float
    int rank = 0;
    QString tooltip;
};

class AllocationMap : public QWidget {
    Q_OBJECT
public:
    explicit AllocationMap(QWidget* parent = nullptr);
    void setCells(int blocks, const QStringList& columns, const std::vector<AllocationCell>& cells);
    void clear();
    const std::vector<AllocationCell>& cells() const { return cells_; }
    QSize minimumSizeHint() const override { return {260, 200}; }
    static QColor bitsColor(int bits);  // the colour of a bit width (grey for float)

protected:
    void paintEvent(QPaintEvent*) override;
    bool event(QEvent* e) override;  // tooltips: the module under the mouse

private:
    QRect plotRect() const;
    const AllocationCell* cellAt(const QPoint& pos) const;
    int blocks_ = 0;
    QStringList columns_;
    std::vector<AllocationCell> cells_;
};

}  // namespace cloq::ui

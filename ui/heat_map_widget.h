// A heat map of per-group quantization error (output rows × input groups) with a colour bar, drawn by hand
// because Qt Charts has no heat map. Viridis colours read the same on light and dark backgrounds.
#pragma once
#include <QImage>
#include <QWidget>

#include "layer_report.h"

namespace cloq::ui {

class HeatMapWidget : public QWidget {
    Q_OBJECT
public:
    explicit HeatMapWidget(QWidget* parent = nullptr);
    void setGrid(const GroupErrorGrid& grid);
    void clear();
    const GroupErrorGrid& grid() const { return grid_; }
    QSize minimumSizeHint() const override { return {240, 180}; }
    static QColor viridis(double t);  // t in [0, 1]

protected:
    void paintEvent(QPaintEvent*) override;
    bool event(QEvent* e) override;  // tooltips: the cell under the mouse

private:
    QRect plotRect() const;
    GroupErrorGrid grid_;
    QImage image_;
    float lo_ = 0, hi_ = 0;
};

}  // namespace cloq::ui

// Base of the chart widgets: follows theme changes (restyle on palette change) and saves itself as PNG or SVG.
#pragma once
#include <QString>
#include <QWidget>

class QChart;
class QChartView;

namespace cloq::ui {

class ChartPanel : public QWidget {
    Q_OBJECT
public:
    using QWidget::QWidget;
    // Re-applies theme colours and fonts to every chart (also called on palette changes).
    virtual void restyle() = 0;

protected:
    void changeEvent(QEvent* event) override;
    // A chart view with the project's defaults (antialiasing, no rubber band, tooltips enabled).
    static QChartView* makeView(QChart* chart, QWidget* parent);
};

// Saves any widget as .png (pixels as shown) or .svg (vector, through QSvgGenerator). Throws cloq::Error naming
// the file when the suffix is neither or the file cannot be written.
void save_widget_image(QWidget* widget, const QString& path);

// "0.0123", "1.23e-05": compact numbers for chart labels.
QString format_number(double v, int precision = 3);

}  // namespace cloq::ui

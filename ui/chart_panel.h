// Base of the chart widgets: follows theme changes (restyle on palette change) and saves itself as PNG or SVG.
#pragma once
#include <QString>
#include <QWidget>

class QAbstractAxis;
class QBoxLayout;
class QChart;
class QChartView;
class QLabel;
class QValueAxis;

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
    // The word-wrapped rich-text caption above a chart (the sentence that gives its numbers), added to `layout`.
    QLabel* addCaption(QBoxLayout* layout);
    // Adds a row of controls to `layout` in a sideways-scrolling strip: a tab widget is as wide as its widest page,
    // so one wide row of controls (the fine-tune options) used to push the explorer's discrepancy columns out of a
    // 1280-px window. The strip keeps the row's height and scrolls when the tab is narrower than the row.
    void addControlsRow(QBoxLayout* layout, QLayout* row);
    // Adds `x` at the bottom and `y` at the left of `chart` and attaches every series the chart holds to both.
    static void attachAxes(QChart* chart, QAbstractAxis* x, QAbstractAxis* y);
};

// Saves any widget as .png (pixels as shown) or .svg (vector, through QSvgGenerator). Throws cloq::Error naming
// the file when the suffix is neither or the file cannot be written.
void save_widget_image(QWidget* widget, const QString& path);

// An integer axis (ranks, layer index) spanning exactly [0, max] with ticks at a round step (1, 2, 5, 10, 20, …)
// so that at most about `max_ticks` labels show: no padding past the data as applyNiceNumbers() would add.
void set_integer_axis(QValueAxis* axis, int max, int max_ticks = 10);

// A value axis over exactly [lo, hi] with ticks at multiples of a round step (1, 2 or 5 × 10^k, anchored at 0) so
// that about `max_ticks` labels show, printed with just enough decimals for the step.
void set_round_ticks_axis(QValueAxis* axis, double lo, double hi, int max_ticks = 8);

// "0.0123", "1.23e-05": compact numbers for chart labels.
QString format_number(double v, int precision = 3);

}  // namespace cloq::ui

// Tab 8: settings for a size budget. Compute runs `cloq plan`'s curves in the background (one quantizer run per
// layer and candidate bit width; ranks from CLoQ's spectrum). The chart then draws the size–objective front of
// the exact planner with every uniform setting on the same axes; the budget slider (or "the size of" a uniform
// setting) picks a point, the map shows the allocation per block and module, and the summary gives its size,
// objective, the best uniform setting that fits the same budget, the gap to the Lagrangian bound and the loaders
// that read the result. Apply writes the plan into the session's settings (and can open the export dialog).
// The view only derives from BudgetController's state.
#pragma once
#include <QList>
#include <QVector>

#include "chart_panel.h"

class QCheckBox;
class QChart;
class QComboBox;
class QGraphicsSimpleTextItem;
class QLabel;
class QLineEdit;
class QLineSeries;
class QLogValueAxis;
class QPushButton;
class QScatterSeries;
class QSlider;
class QValueAxis;

namespace cloq::ui {

class AllocationMap;
class BudgetController;
struct BudgetRequest;

class BudgetView : public ChartPanel {
    Q_OBJECT
public:
    BudgetView(BudgetController* controller, QWidget* parent = nullptr);
    void restyle() override;
    // The request the controls describe (what Compute runs). Throws cloq::Error for an unreadable rank list.
    BudgetRequest request() const;

    QPushButton* computeButton() const { return compute_; }
    QPushButton* cancelButton() const { return cancel_; }
    QPushButton* applyButton() const { return apply_; }
    QPushButton* applyExportButton() const { return applyExport_; }
    QSlider* budgetSlider() const { return slider_; }
    QComboBox* likeBox() const { return like_; }
    QComboBox* modeBox() const { return mode_; }
    QLineEdit* ranksEdit() const { return ranks_; }
    QCheckBox* bitsBox(int bits) const;
    QLabel* stateLabel() const { return state_; }
    QLabel* summaryLabel() const { return summary_; }
    QLineSeries* frontSeries() const { return front_; }
    QScatterSeries* chosenSeries() const { return chosen_; }
    const QVector<QScatterSeries*>& uniformSeries() const { return uniform_; }
    AllocationMap* allocationMap() const { return map_; }

Q_SIGNALS:
    void message(const QString& text);  // errors and confirmations for the status bar
    void exportRequested();             // Apply and export: the plan is in the settings, open the export dialog

private:
    void computeClicked();
    void applyClicked(bool then_export);
    void reset();
    void redraw();       // curves arrived or the budget moved
    void placeLabels();  // the uniform points' rank labels follow the plot area
    int sliderFor(int64_t bytes) const;

    BudgetController* controller_;
    QVector<QCheckBox*> bits_;
    QLineEdit* ranks_ = nullptr;
    QComboBox* mode_ = nullptr;
    QComboBox* dtype_ = nullptr;
    QPushButton *compute_ = nullptr, *cancel_ = nullptr, *apply_ = nullptr, *applyExport_ = nullptr;
    QLabel *state_ = nullptr, *caption_ = nullptr, *summary_ = nullptr, *budgetText_ = nullptr;
    QSlider* slider_ = nullptr;
    QComboBox* like_ = nullptr;
    QChart* chart_ = nullptr;
    QValueAxis* x_ = nullptr;
    QLogValueAxis* y_ = nullptr;
    QLineSeries* front_ = nullptr;
    QScatterSeries* frontMarks_ = nullptr;
    QScatterSeries* chosen_ = nullptr;
    QVector<QScatterSeries*> uniform_;  // one per candidate bit width
    QList<QGraphicsSimpleTextItem*> labels_;
    AllocationMap* map_ = nullptr;
    bool frontDrawn_ = false;  // the front and uniform points depend on the curves only
    double yFloor_ = 1e-3;     // the log axis's lowest decade; smaller objectives are drawn on it
};

}  // namespace cloq::ui

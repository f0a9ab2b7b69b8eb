// Tab 7: what each initialization fine-tunes into. Choose the inits (zero, LoftQ, CLoQ with its three splits),
// steps, batch, window length and learning rate; Start trains them one after another in the background (progress,
// ETA and Cancel in the status bar) on disjoint parts of the session's text. The chart draws each run's training
// loss as perplexity (log scale, a moving average) with its evaluation perplexities as markers; the table gives the
// perplexity at step 0 and at the end and the first step at which each init reaches a common target (the worst
// final perplexity, so that every init reaches it). A row's trained adapter can be exported as PEFT files.
// The view only derives from FinetuneController's state.
#pragma once
#include <QMap>
#include <QVector>

#include "chart_panel.h"

class QCheckBox;
class QChart;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineSeries;
class QLogValueAxis;
class QPushButton;
class QScatterSeries;
class QSpinBox;
class QTableWidget;
class QValueAxis;

namespace cloq::ui {

class FinetuneController;
struct FinetunePlan;

class FinetuneView : public ChartPanel {
    Q_OBJECT
public:
    FinetuneView(FinetuneController* controller, QWidget* parent = nullptr);
    void restyle() override;
    // The plan the controls describe (what Start runs).
    FinetunePlan plan() const;

    QPushButton* startButton() const { return start_; }
    QPushButton* cancelButton() const { return cancel_; }
    QPushButton* exportButton() const { return export_; }
    QSpinBox* stepsBox() const { return steps_; }
    QSpinBox* batchBox() const { return batch_; }
    QSpinBox* seqlenBox() const { return seqlen_; }
    QSpinBox* evalWindowsBox() const { return evalWindows_; }
    QComboBox* precisionBox() const { return precision_; }
    QDoubleSpinBox* lrBox() const { return lr_; }
    QCheckBox* initBox(const QString& label) const { return inits_.value(label); }
    QTableWidget* table() const { return table_; }
    QLineSeries* lossSeries(int run) const { return run < loss_.size() ? loss_[run] : nullptr; }
    QScatterSeries* evalSeries(int run) const { return run < eval_.size() ? eval_[run] : nullptr; }
    QLabel* stateLabel() const { return state_; }

Q_SIGNALS:
    void message(const QString& text);  // errors and confirmations for the status bar

private:
    void startClicked();
    void exportClicked();
    void reset();
    void update(int run);
    void rebuildTable();
    void rescale();

    FinetuneController* controller_;
    QMap<QString, QCheckBox*> inits_;  // by FineTuneInit::label()
    QSpinBox *steps_ = nullptr, *batch_ = nullptr, *seqlen_ = nullptr, *evalWindows_ = nullptr;
    QComboBox* precision_ = nullptr;
    QDoubleSpinBox* lr_ = nullptr;
    QPushButton *start_ = nullptr, *cancel_ = nullptr, *export_ = nullptr;
    QLabel *state_ = nullptr, *caption_ = nullptr, *target_ = nullptr;
    QChart* chart_ = nullptr;
    QValueAxis* x_ = nullptr;
    QLogValueAxis* y_ = nullptr;
    QVector<QLineSeries*> loss_;
    QVector<QScatterSeries*> eval_;
    QTableWidget* table_ = nullptr;
};

}  // namespace cloq::ui

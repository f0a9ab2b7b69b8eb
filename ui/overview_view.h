// Tab 5: the whole model — the relative discrepancy of every linear layer along depth for zero init, LoftQ and
// CLoQ, and a perplexity panel (float model, then zero / LoftQ / CLoQ on the quantized model under the current
// settings), computed on request in the background.
#pragma once
#include <QVector>
#include <cmath>

#include "chart_panel.h"
#include "layer_table_model.h"

class QBarSet;
class QChart;
class QLabel;
class QLineSeries;
class QPushButton;
class QTableWidget;
class QValueAxis;
class QBarSeries;

namespace cloq::ui {

class OverviewView : public ChartPanel {
    Q_OBJECT
public:
    explicit OverviewView(QWidget* parent = nullptr);
    void setRows(const QVector<LayerRow>& rows);
    void clear();
    void setAnalysisState(const QString& text, bool running);
    void setPerplexityState(const QString& text, bool running);
    void setPerplexity(const PerplexitySummary& r);
    void clearPerplexity(const QString& why);  // bars emptied, `why` shown instead of the numbers
    void restyle() override;
    int analysedCount() const { return analysed_; }
    QString caption() const;  // the text under the chart (what it draws, in words)

    QLineSeries* cloqSeries() const { return cloq_; }
    QLineSeries* loftqSeries() const { return loftq_; }
    QLineSeries* zeroSeries() const { return zero_; }
    // The bar of the float model (0), zero init (1), LoftQ (2), CLoQ (3); 0 when not computed.
    double perplexityBar(int i) const;
    QPushButton* analyzeButton() const { return analyze_; }
    QPushButton* perplexityButton() const { return ppl_; }

Q_SIGNALS:
    void analyzeRequested();
    void perplexityRequested();
    void layerClicked(const QString& name);

private:
    int nearest(double x) const;  // the layer whose point is nearest to x
    QChart* chart_ = nullptr;
    QLineSeries *zero_ = nullptr, *loftq_ = nullptr, *cloq_ = nullptr;
    QValueAxis* x_ = nullptr;
    QValueAxis* y_ = nullptr;
    QVector<double> xs_;  // x position of each layer (block + offset inside the block)
    QChart* pplChart_ = nullptr;
    QBarSeries* pplSeries_ = nullptr;
    QList<QBarSet*> pplSets_;  // float, zero, LoftQ, CLoQ
    QValueAxis* pplAxis_ = nullptr;
    QLabel *analysisState_ = nullptr, *pplState_ = nullptr, *caption_ = nullptr;
    QPushButton *analyze_ = nullptr, *ppl_ = nullptr;
    QStringList names_;
    int analysed_ = 0;
};

}  // namespace cloq::ui

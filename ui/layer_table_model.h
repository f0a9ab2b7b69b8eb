// The layer explorer's item model: decoder blocks with their linear modules (tree) or all modules in one flat
// list, with shape, current settings and the relative discrepancy of zero init, LoftQ and CLoQ, whose cells are
// colour-scaled on one shared scale so the worst layers stand out. Sort through a QSortFilterProxyModel on SortRole.
#pragma once
#include <QAbstractItemModel>
#include <QHash>
#include <QVector>
#include <functional>

#include "cloq/settings/settings.h"
#include "layer_report.h"

namespace cloq::ui {

struct LayerRow {
    QString name;  // model.layers.3.mlp.down_proj
    int block = 0;
    QString kind;  // down_proj
    int64_t out = 0, in = 0;
    LayerSettings settings;
    bool overridden = false;
    bool skipped = false;  // left unquantized by the loaded profile: nothing to analyse
    bool has_metrics = false;
    LayerSettings metrics_settings;  // the settings the metrics were computed under
    MethodMetrics zero, loftq, cloq;

    // Metrics are shown as current only when they were computed under the row's settings; otherwise they are
    // stale (greyed, "recomputing…") until the background analysis replaces them.
    bool current() const { return has_metrics && !skipped && metrics_settings == settings; }
    bool stale() const { return has_metrics && !current(); }
};

class LayerTableModel : public QAbstractItemModel {
    Q_OBJECT
public:
    enum Column { Module, Shape, Bits, Group, Rank, Split, Zero, Loftq, Cloq, Gain, ColumnCount };
    enum Role { SortRole = Qt::UserRole, NameRole, HeatRole, StaleRole };  // StaleRole: metrics not current

    explicit LayerTableModel(QObject* parent = nullptr);

    void setLayers(QVector<LayerRow> rows);
    void clear();
    void setFlat(bool flat);
    bool isFlat() const { return flat_; }
    void updateSettings(const QString& name, const LayerSettings& s, bool overridden, bool skipped = false);
    // Settings of every row at once (a whole-model change, a profile): one rescale and one repaint.
    void updateAllSettings(const std::function<void(LayerRow&)>& edit);
    // `computed_under` are the settings the metrics belong to: a late answer to older settings lands as stale.
    void updateMetrics(const QString& name, const LayerSettings& computed_under, const MethodMetrics& zero,
                       const MethodMetrics& loftq, const MethodMetrics& cloq);
    void clearMetrics();

    int layerCount() const { return rows_.size(); }
    int analysableCount() const;        // rows not skipped
    int currentCount() const;           // rows whose metrics belong to their settings
    QStringList pendingLayers() const;  // analysable rows without current metrics, in model order
    const LayerRow* layer(const QString& name) const;
    const QVector<LayerRow>& layers() const { return rows_; }
    QModelIndex indexOfLayer(const QString& name, int column = 0) const;
    QString layerName(const QModelIndex& index) const;  // empty for block rows

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation o, int role = Qt::DisplayRole) const override;

private:
    static constexpr quintptr kBlockId = ~quintptr(0);  // internal id of block rows (children store their block)
    void rebuildIndex();
    void emitAllChanged();
    void recomputeScale();
    QVariant cellData(const LayerRow& r, int column, int role) const;
    QVariant blockData(int block, int column, int role) const;
    QColor heatColor(double v) const;
    const LayerRow* rowFor(const QModelIndex& index) const;

    QVector<LayerRow> rows_;
    QVector<int> blocks_;              // block numbers in order
    QVector<QVector<int>> blockRows_;  // rows_ indices per block
    QHash<QString, int> byName_;
    bool flat_ = false;
    double scaleLo_ = 0, scaleHi_ = 1;
};

}  // namespace cloq::ui

#include "layer_table_model.h"

#include <QApplication>
#include <QColor>
#include <QPalette>
#include <algorithm>
#include <cmath>

#include "theme.h"

namespace cloq::ui {
namespace {
QString group_text(int g) { return g < 0 ? QString("chan") : QString::number(g); }
QString split_text(Split s) { return QString::fromStdString(cloq::to_string(s)); }
// The value a metric column shows: stale metrics too (greyed by cellData), so a row never goes blank while it is
// recomputed; the heat scale and the block means use current rows only.
double metric_of(const LayerRow& r, int column) {
    if (!r.has_metrics || r.skipped) return NAN;
    switch (column) {
    case LayerTableModel::Zero:
        return r.zero.fro_rel;
    case LayerTableModel::Loftq:
        return r.loftq.fro_rel;
    case LayerTableModel::Cloq:
        return r.cloq.fro_rel;
    case LayerTableModel::Gain:
        return r.loftq.fro_rel > 0 ? 100.0 * (1.0 - r.cloq.fro_rel / r.loftq.fro_rel) : NAN;
    default:
        return NAN;
    }
}
}  // namespace

LayerTableModel::LayerTableModel(QObject* parent) : QAbstractItemModel(parent) {}

void LayerTableModel::setLayers(QVector<LayerRow> rows) {
    beginResetModel();
    rows_ = std::move(rows);
    rebuildIndex();
    recomputeScale();
    endResetModel();
}

void LayerTableModel::clear() { setLayers({}); }

void LayerTableModel::setFlat(bool flat) {
    if (flat == flat_) return;
    beginResetModel();
    flat_ = flat;
    endResetModel();
}

void LayerTableModel::rebuildIndex() {
    byName_.clear();
    blocks_.clear();
    blockRows_.clear();
    for (int i = 0; i < rows_.size(); ++i) {
        byName_.insert(rows_[i].name, i);
        int b = blocks_.indexOf(rows_[i].block);
        if (b < 0) {
            blocks_.append(rows_[i].block);
            blockRows_.append(QVector<int>());
            b = blocks_.size() - 1;
        }
        blockRows_[b].append(i);
    }
}

void LayerTableModel::recomputeScale() {
    // One scale for the zero / LoftQ / CLoQ columns: the same colour means the same discrepancy everywhere.
    scaleLo_ = INFINITY;
    scaleHi_ = -INFINITY;
    for (const LayerRow& r : rows_)
        for (int c : {Zero, Loftq, Cloq}) {
            if (!r.current()) continue;
            const double v = metric_of(r, c);
            if (std::isfinite(v)) {
                scaleLo_ = std::min(scaleLo_, v);
                scaleHi_ = std::max(scaleHi_, v);
            }
        }
    if (!std::isfinite(scaleLo_)) scaleLo_ = 0, scaleHi_ = 1;
}

QColor LayerTableModel::heatColor(double v) const {
    const double t = scaleHi_ > scaleLo_ ? std::clamp((v - scaleLo_) / (scaleHi_ - scaleLo_), 0.0, 1.0) : 0.0;
    // Blend the base colour towards a warm red: text stays readable at every level, in both themes.
    const QColor base = QApplication::palette().color(QPalette::Base);
    const QColor hot = current_theme() == Theme::Dark ? QColor(0xb0, 0x30, 0x28) : QColor(0xf0, 0x5a, 0x4a);
    const QColor cool = current_theme() == Theme::Dark ? QColor(0x24, 0x5a, 0x3a) : QColor(0xc8, 0xec, 0xd4);
    const QColor& target = t < 0.5 ? cool : hot;
    const double w = t < 0.5 ? (0.5 - t) * 2 * 0.55 : (t - 0.5) * 2 * 0.75;
    return QColor::fromRgbF(static_cast<float>(base.redF() * (1 - w) + target.redF() * w),
                            static_cast<float>(base.greenF() * (1 - w) + target.greenF() * w),
                            static_cast<float>(base.blueF() * (1 - w) + target.blueF() * w));
}

void LayerTableModel::updateSettings(const QString& name, const LayerSettings& s, bool overridden, bool skipped) {
    const auto it = byName_.find(name);
    if (it == byName_.end()) return;
    LayerRow& r = rows_[*it];
    const bool was_current = r.current();
    r.settings = s;
    r.overridden = overridden;
    r.skipped = skipped;
    if (was_current != r.current()) {
        // The row left (or rejoined) the heat scale: every colour may move.
        recomputeScale();
        emitAllChanged();
        return;
    }
    const QModelIndex a = indexOfLayer(name, 0), b = indexOfLayer(name, ColumnCount - 1);
    Q_EMIT dataChanged(a, b);
    if (!flat_) {
        const QModelIndex p = a.parent();
        Q_EMIT dataChanged(p.siblingAtColumn(0), p.siblingAtColumn(ColumnCount - 1));
    }
}

void LayerTableModel::updateAllSettings(const std::function<void(LayerRow&)>& edit) {
    for (LayerRow& r : rows_) edit(r);
    recomputeScale();
    emitAllChanged();
}

void LayerTableModel::emitAllChanged() {
    if (rowCount() == 0) return;
    Q_EMIT dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
    if (!flat_)
        for (int b = 0; b < blocks_.size(); ++b)
            Q_EMIT dataChanged(index(0, 0, index(b, 0)), index(blockRows_[b].size() - 1, ColumnCount - 1, index(b, 0)));
}

int LayerTableModel::analysableCount() const {
    return static_cast<int>(std::count_if(rows_.begin(), rows_.end(), [](const LayerRow& r) { return !r.skipped; }));
}

int LayerTableModel::currentCount() const {
    return static_cast<int>(std::count_if(rows_.begin(), rows_.end(), [](const LayerRow& r) { return r.current(); }));
}

QStringList LayerTableModel::pendingLayers() const {
    QStringList out;
    for (const LayerRow& r : rows_)
        if (!r.skipped && !r.current()) out << r.name;
    return out;
}

void LayerTableModel::updateMetrics(const QString& name, const LayerSettings& computed_under, const MethodMetrics& zero,
                                    const MethodMetrics& loftq, const MethodMetrics& cloq) {
    const auto it = byName_.find(name);
    if (it == byName_.end()) return;
    LayerRow& r = rows_[*it];
    r.metrics_settings = computed_under;
    r.zero = zero;
    r.loftq = loftq;
    r.cloq = cloq;
    r.has_metrics = zero.valid && cloq.valid;
    const double lo = scaleLo_, hi = scaleHi_;
    recomputeScale();
    if (lo != scaleLo_ || hi != scaleHi_) {
        emitAllChanged();  // every heat colour moved: repaint all rows
    } else {
        Q_EMIT dataChanged(indexOfLayer(name, 0), indexOfLayer(name, ColumnCount - 1));
        if (!flat_) {
            const QModelIndex p = indexOfLayer(name).parent();
            Q_EMIT dataChanged(p.siblingAtColumn(0), p.siblingAtColumn(ColumnCount - 1));
        }
    }
}

void LayerTableModel::clearMetrics() {
    beginResetModel();
    for (LayerRow& r : rows_) r.has_metrics = false;
    recomputeScale();
    endResetModel();
}

const LayerRow* LayerTableModel::layer(const QString& name) const {
    const auto it = byName_.find(name);
    return it == byName_.end() ? nullptr : &rows_[*it];
}

QModelIndex LayerTableModel::indexOfLayer(const QString& name, int column) const {
    const auto it = byName_.find(name);
    if (it == byName_.end()) return {};
    if (flat_) return createIndex(*it, column, kBlockId - 1);
    const int b = blocks_.indexOf(rows_[*it].block);
    return createIndex(blockRows_[b].indexOf(*it), column, quintptr(b));
}

const LayerRow* LayerTableModel::rowFor(const QModelIndex& index) const {
    if (!index.isValid()) return nullptr;
    if (flat_) return index.row() < rows_.size() ? &rows_[index.row()] : nullptr;
    if (index.internalId() == kBlockId) return nullptr;
    const int b = static_cast<int>(index.internalId());
    return &rows_[blockRows_[b][index.row()]];
}

QString LayerTableModel::layerName(const QModelIndex& index) const {
    const LayerRow* r = rowFor(index);
    return r ? r->name : QString();
}

QModelIndex LayerTableModel::index(int row, int column, const QModelIndex& parent) const {
    if (column < 0 || column >= ColumnCount || row < 0) return {};
    if (flat_) {
        if (parent.isValid() || row >= rows_.size()) return {};
        return createIndex(row, column, kBlockId - 1);
    }
    if (!parent.isValid()) return row < blocks_.size() ? createIndex(row, column, kBlockId) : QModelIndex();
    if (parent.internalId() != kBlockId) return {};
    return row < blockRows_[parent.row()].size() ? createIndex(row, column, quintptr(parent.row())) : QModelIndex();
}

QModelIndex LayerTableModel::parent(const QModelIndex& child) const {
    if (flat_ || !child.isValid() || child.internalId() == kBlockId) return {};
    return createIndex(static_cast<int>(child.internalId()), 0, kBlockId);
}

int LayerTableModel::rowCount(const QModelIndex& parent) const {
    if (parent.column() > 0) return 0;
    if (flat_) return parent.isValid() ? 0 : rows_.size();
    if (!parent.isValid()) return blocks_.size();
    if (parent.internalId() == kBlockId) return blockRows_[parent.row()].size();
    return 0;
}

int LayerTableModel::columnCount(const QModelIndex&) const { return ColumnCount; }

QVariant LayerTableModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o != Qt::Horizontal) return {};
    // Short headers keep the three discrepancy columns in view in a narrow explorer; the tooltips spell them out.
    static const char* names[ColumnCount] = {"Module", "Shape", "b",     "Group", "r",
                                             "Split",  "Zero",  "LoftQ", "CLoQ",  "Gain"};
    static const char* tips[ColumnCount] = {"Decoder block and linear module",
                                            "out × in of the weight",
                                            "b: bit width of the quantized base",
                                            "Quantization group size along the input (chan = per channel)",
                                            "r: LoRA rank",
                                            "Factor split of the CLoQ adapter (paper Table 6)",
                                            "‖X(Q−W)ᵀ‖_F / ‖XWᵀ‖_F: zero init (QLoRA), the quantization error alone",
                                            "Relative Frobenius discrepancy after LoftQ's initialization",
                                            "Relative Frobenius discrepancy after CLoQ's initialization",
                                            "How much of LoftQ's remaining discrepancy CLoQ removes (%)"};
    if (role == Qt::DisplayRole) return QString(names[section]);
    if (role == Qt::ToolTipRole) return QString(tips[section]);
    return {};
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid()) return {};
    if (!flat_ && index.internalId() == kBlockId) return blockData(index.row(), index.column(), role);
    const LayerRow* r = rowFor(index);
    return r ? cellData(*r, index.column(), role) : QVariant();
}

QVariant LayerTableModel::cellData(const LayerRow& r, int column, int role) const {
    if (role == NameRole) return r.name;
    const double m = metric_of(r, column);
    const bool metric_col = column >= Zero;
    if (role == Qt::DisplayRole) {
        switch (column) {
        case Module:
            return flat_ ? QString("%1.%2").arg(r.block).arg(r.kind) : r.kind;
        case Shape:
            return QString("%1×%2").arg(r.out).arg(r.in);
        case Bits:
            return r.settings.quant.bits;
        case Group:
            return group_text(r.settings.quant.group);
        case Rank:
            return r.settings.rank;
        case Split:
            return split_text(r.settings.split);
        default:
            if (r.skipped) return column == Zero ? QString("float") : QString();
            if (!std::isfinite(m)) return QString("—");
            return column == Gain ? QString("%1 %").arg(m, 0, 'f', 1) : QString::number(m, 'f', 3);
        }
    }
    if (role == StaleRole) return r.stale() || (!r.skipped && !r.has_metrics);
    if (role == SortRole) {
        switch (column) {
        case Module:
            return static_cast<int>(&r - rows_.constData());  // depth order
        case Shape:
            return double(r.out) * double(r.in);
        case Bits:
            return r.settings.quant.bits;
        case Group:
            return r.settings.quant.group;
        case Rank:
            return r.settings.rank;
        case Split:
            return static_cast<int>(r.settings.split);
        default:
            return std::isfinite(m) ? m : -1.0;
        }
    }
    if (role == Qt::BackgroundRole && metric_col && column != Gain && std::isfinite(m) && r.current())
        return heatColor(m);
    // Stale numbers stay readable but greyed and italic: they belong to older settings and are being recomputed.
    if (role == Qt::ForegroundRole && metric_col && r.stale())
        return QApplication::palette().color(QPalette::Disabled, QPalette::Text);
    if (role == HeatRole && metric_col) return m;
    if (role == Qt::TextAlignmentRole && column != Module)
        return QVariant::fromValue(Qt::Alignment(Qt::AlignRight | Qt::AlignVCenter));
    if (role == Qt::FontRole && r.overridden && (column >= Bits && column <= Split)) {
        QFont f;
        f.setBold(true);  // bold settings = this layer overrides the model default
        return f;
    }
    if (role == Qt::FontRole && metric_col && r.stale()) {
        QFont f;
        f.setItalic(true);
        return f;
    }
    if (role == Qt::ToolTipRole) {
        QString tip = QString("<b>%1</b><br>%2 × %3, %4-bit, group %5, rank %6, split %7%8")
                          .arg(r.name)
                          .arg(r.out)
                          .arg(r.in)
                          .arg(r.settings.quant.bits)
                          .arg(group_text(r.settings.quant.group))
                          .arg(r.settings.rank)
                          .arg(split_text(r.settings.split))
                          .arg(r.overridden ? " (own settings)" : "");
        if (r.skipped) return tip + "<br>left unquantized (float) by the loaded profile";
        if (r.has_metrics)
            tip += QString("<br>relative ‖X(Q+BA−W)ᵀ‖_F: zero %1, LoftQ %2, CLoQ %3")
                       .arg(r.zero.fro_rel, 0, 'g', 4)
                       .arg(r.loftq.fro_rel, 0, 'g', 4)
                       .arg(r.cloq.fro_rel, 0, 'g', 4);
        if (r.stale())
            tip += QString("<br><i>computed at %1-bit, group %2, rank %3, split %4: recomputing…</i>")
                       .arg(r.metrics_settings.quant.bits)
                       .arg(group_text(r.metrics_settings.quant.group))
                       .arg(r.metrics_settings.rank)
                       .arg(split_text(r.metrics_settings.split));
        else if (!r.has_metrics)
            tip += "<br><i>not analysed yet</i>";
        return tip;
    }
    return {};
}

QVariant LayerTableModel::blockData(int b, int column, int role) const {
    const QVector<int>& members = blockRows_[b];
    // Block rows show the mean discrepancy of their modules.
    auto mean = [&](int col) {
        double s = 0;
        int n = 0;
        for (int i : members) {
            if (!rows_[i].current()) continue;  // a block mean of mixed settings would describe neither
            const double v = metric_of(rows_[i], col);
            if (std::isfinite(v)) s += v, ++n;
        }
        return n ? s / n : NAN;
    };
    if (role == Qt::DisplayRole) {
        if (column == Module) return QString("block %1").arg(blocks_[b]);
        if (column >= Zero) {
            const double m = mean(column);
            if (!std::isfinite(m)) return QString();
            return column == Gain ? QString("%1 %").arg(m, 0, 'f', 1) : QString::number(m, 'f', 3);
        }
        return {};
    }
    if (role == SortRole) {
        if (column == Module) return blocks_[b];
        if (column >= Zero) {
            const double m = mean(column);
            return std::isfinite(m) ? m : -1.0;
        }
        return blocks_[b];
    }
    if (role == Qt::TextAlignmentRole && column != Module)
        return QVariant::fromValue(Qt::Alignment(Qt::AlignRight | Qt::AlignVCenter));
    if (role == Qt::ToolTipRole)
        return QString("Decoder block %1 (mean over its %2 modules)").arg(blocks_[b]).arg(members.size());
    if (role == Qt::FontRole) {
        QFont f;
        f.setBold(true);
        return f;
    }
    return {};
}

}  // namespace cloq::ui

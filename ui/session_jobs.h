// Glue between whole-model background jobs and the UI thread: relays per-layer results as queued signals.
#pragma once
#include <QMetaObject>
#include <QObject>

#include "model_session.h"

Q_DECLARE_METATYPE(cloq::ui::LayerMetricsRecord)

namespace cloq::ui {

class LayerRecordRelay : public QObject {
    Q_OBJECT
public:
    using QObject::QObject;
    // Thread-safe: called by the job's thread, delivered on this object's thread.
    void post(const LayerMetricsRecord& rec) {
        QMetaObject::invokeMethod(
            this, [this, rec] { Q_EMIT recorded(rec); }, Qt::QueuedConnection);
    }
Q_SIGNALS:
    void recorded(const cloq::ui::LayerMetricsRecord& rec);
};

}  // namespace cloq::ui

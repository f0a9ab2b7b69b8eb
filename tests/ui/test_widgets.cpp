// The GUI's building blocks without a model: command line, demo discovery, background jobs (success, failure,
// cancel, coalesced progress), the explorer's item model (tree/flat, numeric sort, shared colour scale), the
// histogram / heat-map reductions against a direct computation, profiles, theme colours, icon and chart export.
#include <QAbstractButton>
#include <QApplication>
#include <QComboBox>
#include <QElapsedTimer>
#include <QIcon>
#include <QSignalSpy>
#include <QSlider>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QThread>
#include <QtTest/QtTest>
#include <atomic>

#include "about_dialog.h"
#include "background_job.h"
#include "chart_panel.h"
#include "cloq/base/error.h"
#include "cloq/settings/profile.h"
#include "discrepancy_chart.h"
#include "layer_analysis.h"
#include "layer_table_model.h"
#include "settings_panel.h"
#include "studio_options.h"
#include "test_support.h"
#include "theme.h"

using namespace cloq;
using namespace cloq::ui;

namespace {
LayerRow row(const QString& name, int block, const QString& kind, double zero, double loftq, double cloq) {
    LayerRow r;
    r.name = name;
    r.block = block;
    r.kind = kind;
    r.out = 64;
    r.in = 64;
    r.has_metrics = true;
    r.zero.fro_rel = zero, r.zero.valid = true;
    r.loftq.fro_rel = loftq, r.loftq.valid = true;
    r.cloq.fro_rel = cloq, r.cloq.valid = true;
    return r;
}
}  // namespace

class TestWidgets : public QObject {
    Q_OBJECT
public:
    // Before QtTest's watchdog thread starts: it reads the environment concurrently with the test functions.
    TestWidgets() { qputenv("CLOQ_SHARED_DIR", QByteArray(CLOQ_SHARED_DIR)); }

private Q_SLOTS:
    void initTestCase() { apply_theme(*qApp, Theme::Light); }

    void parsesTheCommandLine() {
        int code = -1;
        auto o = parse_studio_options({"cloq-studio", "--model", "/m", "--layer", "model.layers.0.mlp.up_proj", "--tab",
                                       "spectrum", "--size", "1920x1080", "--screenshot", "/tmp/x.png"},
                                      &code);
        QVERIFY(o);
        QCOMPARE(o->model_dir, QString("/m"));
        QCOMPARE(o->tab, QString("spectrum"));
        QCOMPARE(o->size, QSize(1920, 1080));
        QCOMPARE(o->screenshot, QString("/tmp/x.png"));
        QVERIFY(!parse_studio_options({"cloq-studio", "--tab", "nonsense"}, &code));
        QCOMPARE(code, 2);
        QVERIFY(!parse_studio_options({"cloq-studio", "--size", "big"}, &code));
        QVERIFY(!parse_studio_options({"cloq-studio", "--screenshot", "a.png"}, &code));  // no model
        QVERIFY(parse_studio_options({"cloq-studio", "--tab", "playground", "--screenshot", "a.png"}, &code));
        QVERIFY(!parse_studio_options({"cloq-studio", "--demo", "--model", "/m"}, &code));
        QVERIFY(headless_instructions().contains("QT_QPA_PLATFORM=offscreen"));
    }

    void findsTheDemo() {
        const DemoLocation d = find_demo();  // CLOQ_SHARED_DIR set by the constructor
        QVERIFY(d.model_dir.endsWith("stories260K"));
        QVERIFY(d.text_path.endsWith("tinystories-valid.txt"));
        QVERIFY(!find_shared_dir("/nonexistent").isEmpty());  // falls back to the folder next to the build/source tree
    }

    void backgroundJobSucceedsAndCoalescesProgress() {
        BackgroundJob job("test");
        QSignalSpy progress(&job, &BackgroundJob::progressed);
        QSignalSpy ok(&job, &BackgroundJob::succeeded);
        QSignalSpy finished(&job, &BackgroundJob::finished);
        std::atomic<Qt::HANDLE> worker_thread{nullptr};
        QElapsedTimer clock;
        clock.start();
        job.start([&](const Progress& p) {
            worker_thread = QThread::currentThreadId();
            for (int i = 0; i <= 100000; ++i) p(i / 100000.0, "step");
        });
        QVERIFY(finished.wait(20000));
        QCOMPARE(ok.count(), 1);
        QVERIFY(worker_thread.load() != QThread::currentThreadId());
        // 100001 reports, but the UI thread saw at most one coalesced event per 33 ms (plus the first), however
        // fast or slow this machine runs the loop.
        const qint64 elapsed_ms = clock.elapsed();
        QVERIFY2(progress.count() <= elapsed_ms / 33 + 2,
                 qPrintable(QString("%1 events in %2 ms").arg(progress.count()).arg(elapsed_ms)));
        QVERIFY_THROWS_EXCEPTION(Error, job.start([](const Progress&) {}));
    }

    void backgroundJobReportsFailureAndCancel() {
        BackgroundJob bad("bad");
        QSignalSpy failed(&bad, &BackgroundJob::failed);
        bad.start([](const Progress&) { throw Error("model.safetensors: truncated header"); });
        QVERIFY(failed.wait(10000));
        QCOMPARE(failed.first().at(0).toString(), QString("model.safetensors: truncated header"));

        BackgroundJob slow("slow");
        QSignalSpy cancelled(&slow, &BackgroundJob::cancelled);
        slow.start([](const Progress& p) {
            for (;;) {
                p(0.5, "waiting");
                QThread::msleep(5);
            }
        });
        QTest::qWait(50);
        QVERIFY(slow.isRunning());
        slow.cancel();
        QVERIFY(cancelled.wait(10000));
        QVERIFY(!slow.isRunning());
    }

    void layerModelTreeFlatAndSort() {
        LayerTableModel m;
        m.setLayers({row("model.layers.0.self_attn.q_proj", 0, "q_proj", 0.5, 0.3, 0.1),
                     row("model.layers.0.mlp.down_proj", 0, "down_proj", 0.9, 0.6, 0.4),
                     row("model.layers.1.self_attn.q_proj", 1, "q_proj", 0.4, 0.2, 0.05)});
        QCOMPARE(m.rowCount(), 2);  // two blocks
        QCOMPARE(m.rowCount(m.index(0, 0)), 2);
        QCOMPARE(m.data(m.index(0, 0)).toString(), QString("block 0"));
        QCOMPARE(m.layerName(m.index(1, 0, m.index(0, 0))), QString("model.layers.0.mlp.down_proj"));
        // Colour scale shared by the three discrepancy columns: the largest value is the hottest.
        const QColor hot =
            m.data(m.indexOfLayer("model.layers.0.mlp.down_proj", LayerTableModel::Zero), Qt::BackgroundRole)
                .value<QColor>();
        const QColor cold =
            m.data(m.indexOfLayer("model.layers.1.self_attn.q_proj", LayerTableModel::Cloq), Qt::BackgroundRole)
                .value<QColor>();
        QVERIFY(hot.red() > hot.green());
        QVERIFY(cold.green() > cold.red());
        // Flat list sorted by CLoQ (numbers, not text): worst first.
        m.setFlat(true);
        QCOMPARE(m.rowCount(), 3);
        QSortFilterProxyModel proxy;
        proxy.setSourceModel(&m);
        proxy.setSortRole(LayerTableModel::SortRole);
        proxy.sort(LayerTableModel::Cloq, Qt::DescendingOrder);
        QCOMPARE(proxy.data(proxy.index(0, LayerTableModel::Module)).toString(), QString("0.down_proj"));
        QCOMPARE(proxy.data(proxy.index(2, LayerTableModel::Module)).toString(), QString("1.q_proj"));
        QCOMPARE(proxy.data(proxy.index(0, LayerTableModel::Gain)).toString(), QString("33.3 %"));
        // A metrics update lands in the right row.
        MethodMetrics z, l, c;
        z.fro_rel = 2.0, l.fro_rel = 1.0, c.fro_rel = 0.5;
        z.valid = l.valid = c.valid = true;
        const QString q = "model.layers.1.self_attn.q_proj";
        m.updateMetrics(q, m.layer(q)->settings, z, l, c);
        proxy.sort(LayerTableModel::Cloq, Qt::DescendingOrder);
        QCOMPARE(proxy.data(proxy.index(0, LayerTableModel::Module)).toString(), QString("1.q_proj"));
        QVERIFY(m.layer(q)->current());
        QCOMPARE(m.currentCount(), 3);

        // New settings make the row's numbers stale at once: greyed, out of the heat scale and the block means,
        // listed as pending; metrics that arrive for the older settings stay stale.
        LayerSettings s = m.layer(q)->settings;
        s.rank += 8;
        m.updateSettings(q, s, true);
        QVERIFY(m.layer(q)->stale());
        QCOMPARE(m.currentCount(), 2);
        QCOMPARE(m.pendingLayers(), QStringList{q});
        const QModelIndex cell = m.indexOfLayer(q, LayerTableModel::Cloq);
        QVERIFY(m.data(cell, LayerTableModel::StaleRole).toBool());
        QVERIFY(!m.data(cell, Qt::BackgroundRole).isValid());
        QVERIFY(m.data(cell, Qt::ToolTipRole).toString().contains("recomputing"));
        LayerSettings old = s;
        old.rank -= 8;
        m.updateMetrics(q, old, z, l, c);
        QVERIFY(m.layer(q)->stale());
        m.updateMetrics(q, s, z, l, c);
        QVERIFY(m.layer(q)->current());
        QVERIFY(!m.data(cell, LayerTableModel::StaleRole).toBool());
        QVERIFY(m.data(cell, Qt::BackgroundRole).isValid());
        QVERIFY(m.pendingLayers().isEmpty());
    }

    // Histogram and per-group RMS error against direct loops (ragged last group, pooled rows).
    void weightReductions() {
        const std::vector<float> v{-1.0f, -0.5f, 0.0f, 0.49f, 1.0f};
        const Histogram h = histogram(v, -1.0, 1.0, 4);
        QCOMPARE(h.counts, (std::vector<double>{1, 1, 2, 1}));
        auto gen = at::detail::createCPUGenerator(3);
        const torch::Tensor W = torch::randn({10, 172}, gen);
        const torch::Tensor Q = W + 0.1 * torch::randn({10, 172}, gen);
        const GroupErrorGrid g = group_error_grid(W, Q, 64, 4);
        QCOMPARE(g.cols, 3);
        QCOMPARE(g.rows_per_cell, 3);
        QCOMPARE(g.rows, 4);
        const auto Wd = test::to_eigen(W), Qd = test::to_eigen(Q);
        for (int r = 0; r < g.rows; ++r)
            for (int c = 0; c < g.cols; ++c) {
                // RMS over the cell: mean over its rows of each row's mean squared error in the group
                double rows_mean = 0;
                int nr = 0;
                for (int i = r * 3; i < std::min(10, r * 3 + 3); ++i, ++nr) {
                    double s = 0;
                    int k = 0;
                    for (int j = c * 64; j < std::min(172, c * 64 + 64); ++j, ++k)
                        s += std::pow(Wd(i, j) - Qd(i, j), 2);
                    rows_mean += s / k;
                }
                QVERIFY(test::rel_diff(g.at(r, c), std::sqrt(rows_mean / nr)) < 1e-5);
            }
    }

    void profileRoundTrip() {
        ResolvedProfile r;
        r.defaults.quant.bits = 3;
        r.defaults.rank = 8;
        LayerSettings s = r.defaults;
        s.rank = 16;
        s.split = Split::Sqrt;
        r.overrides["model.layers.0.mlp.down_proj"] = s;
        r.skipped.insert("model.layers.1.mlp.down_proj");
        QTemporaryDir dir;
        const std::string path = dir.path().toStdString() + "/p.json";
        save_profile(path, make_profile(r));
        const std::vector<std::string> names{"model.layers.0.mlp.down_proj", "model.layers.10.mlp.down_proj",
                                             "model.layers.1.mlp.down_proj", "model.layers.0.self_attn.q_proj"};
        const ResolvedProfile back = resolve_profile(load_profile(path), names);
        QVERIFY(back.defaults == r.defaults);
        QCOMPARE(back.overrides.size(), size_t(1));  // anchored: layers.10 is not layers.0
        QVERIFY(back.overrides.at("model.layers.0.mlp.down_proj") == s);
        QCOMPARE(back.skipped.count("model.layers.1.mlp.down_proj"), size_t(1));
    }

    void settingsPanelEmitsAndExplains() {
        SettingsPanel p;
        LayerSettings s;
        s.rank = 8;
        p.setLayer("model.layers.0.self_attn.q_proj", "q_proj", 64, 64, s, false);
        QCOMPARE(p.rankSlider()->maximum(), 64);
        QSignalSpy changed(&p, &SettingsPanel::settingsChanged);
        p.rankSlider()->setValue(12);
        QCOMPARE(changed.count(), 1);
        QCOMPARE(changed.last().at(0).value<LayerSettings>().rank, 12);
        QCOMPARE(p.rankSpin()->value(), 12);
        p.splitBox()->setCurrentIndex(p.splitBox()->findData(static_cast<int>(Split::UVs)));
        QCOMPARE(p.settings().split, Split::UVs);
        QVERIFY(SettingsPanel::splitExplanation(Split::UVs).contains("Table 6"));
        // every control explains itself
        for (QWidget* w : p.findChildren<QWidget*>())
            if (qobject_cast<QAbstractButton*>(w) || qobject_cast<QComboBox*>(w) ||
                qobject_cast<QAbstractSpinBox*>(w) || qobject_cast<QSlider*>(w))
                QVERIFY2(!w->toolTip().isEmpty(),
                         qPrintable(w->metaObject()->className() + QString(" ") + w->objectName()));
    }

    void themesKeepMethodsDistinct() {
        for (Theme t : {Theme::Light, Theme::Dark}) {
            apply_theme(*qApp, t);
            const QColor bg = QApplication::palette().color(QPalette::Base);
            QList<QColor> seen;
            for (InitMethod m : {InitMethod::Zero, InitMethod::Svd, InitMethod::Loftq, InitMethod::Cloq}) {
                const QColor c = method_color(m);
                QVERIFY(!seen.contains(c));
                seen << c;
                // readable against the chart background: a clear lightness difference
                QVERIFY2(std::abs(c.lightness() - bg.lightness()) > 60, qPrintable(c.name() + " on " + bg.name()));
            }
        }
        apply_theme(*qApp, Theme::Light);
    }

    void iconAboutAndChartExport() {
        const QIcon icon(":/cloq/icons/cloq-studio.svg");
        QVERIFY(!icon.isNull());
        const QImage img = icon.pixmap(64, 64).toImage();
        QVERIFY(!img.isNull());
        QVERIFY(img.pixelColor(32, 32).alpha() > 0);
        QVERIFY(AboutDialog::versionsText().contains("Qt " + QString(qVersion())));
        QVERIFY(AboutDialog::versionsText().contains("LibTorch"));
        DiscrepancyChart chart;
        chart.resize(600, 400);
        QTemporaryDir dir;
        save_widget_image(&chart, dir.path() + "/c.png");
        save_widget_image(&chart, dir.path() + "/c.svg");
        QVERIFY(QImage(dir.path() + "/c.png").width() == 600);
        QFile svg(dir.path() + "/c.svg");
        QVERIFY(svg.open(QIODevice::ReadOnly));
        QVERIFY(svg.readAll().contains("<svg"));
        try {
            save_widget_image(&chart, dir.path() + "/c.bmpx");
            QFAIL("unknown suffix accepted");
        } catch (const Error& e) {
            QVERIFY(QString(e.what()).contains("c.bmpx"));
        }
    }
};

QTEST_MAIN(TestWidgets)
#include "test_widgets.moc"

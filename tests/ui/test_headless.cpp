// The cloq-studio executable run headless as a user or a build script would: without any display it explains how
// to run headless instead of aborting; with the offscreen platform --screenshot saves the window and exits 0;
// a bad model gives a non-zero exit and a message naming it. (Needs the cloq-studio target built: the whole build
// or `cmake --build build --target cloq-studio`.)
#include <QFileInfo>
#include <QImage>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest/QtTest>

class TestHeadless : public QObject {
    Q_OBJECT
    QString studio_ = QStringLiteral(CLOQ_BINARY_DIR "/app/cloq-studio");
    QTemporaryDir tmp_;

    QProcessEnvironment env(bool offscreen) const {
        QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
        for (const char* v : {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}) e.remove(v);
        if (offscreen) e.insert("QT_QPA_PLATFORM", "offscreen");
        e.insert("CLOQ_SHARED_DIR", CLOQ_SHARED_DIR);
        e.insert("CLOQ_CACHE_DIR", tmp_.path() + "/cache");
        e.insert("XDG_CONFIG_HOME", tmp_.path() + "/config");  // no recent files or theme from the user's settings
        return e;
    }
    // Runs the studio; returns exit code, fills stdout/stderr.
    int run(const QStringList& args, bool offscreen, QString* out, QString* err, int timeout_ms = 120000) {
        QProcess p;
        p.setProcessEnvironment(env(offscreen));
        p.start(studio_, args);
        if (!p.waitForFinished(timeout_ms)) {
            p.kill();
            p.waitForFinished();
            return -1;
        }
        *out = QString::fromLocal8Bit(p.readAllStandardOutput());
        *err = QString::fromLocal8Bit(p.readAllStandardError());
        return p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2;
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY2(QFileInfo(studio_).isExecutable(), qPrintable(studio_ + " is not built")); }

    void noDisplayPrintsHowToRunHeadless() {
        QString out, err;
        const int code = run({"--demo"}, false, &out, &err);
        QCOMPARE(code, 2);
        QVERIFY2(err.contains("no display"), qPrintable(err));
        QVERIFY2(err.contains("QT_QPA_PLATFORM=offscreen"), qPrintable(err));
        QVERIFY2(err.contains("xvfb-run"), qPrintable(err));
        // --version needs no display at all.
        QCOMPARE(run({"--version"}, false, &out, &err), 0);
        QVERIFY(out.startsWith("cloq-studio "));
    }

    void screenshotOfThePlayground() {
        const QString png = tmp_.path() + "/playground.png";
        QString out, err;
        const int code = run({"--tab", "playground", "--size", "1280x800", "--screenshot", png}, true, &out, &err);
        QVERIFY2(code == 0, qPrintable(QString("exit %1: %2").arg(code).arg(err)));
        const QImage img(png);
        QCOMPARE(img.size(), QSize(1280, 800));
        // Not a blank window: the charts and text put many distinct colours on it.
        QSet<QRgb> colours;
        for (int y = 0; y < img.height(); y += 7)
            for (int x = 0; x < img.width(); x += 7) colours.insert(img.pixel(x, y));
        QVERIFY2(colours.size() > 50, qPrintable(QString::number(colours.size())));
        QVERIFY(out.contains("playground.png"));
    }

    void screenshotFailsWithAMessage() {
        QString out, err;
        const QString missing = tmp_.path() + "/no-such-model";
        const int code =
            run({"--model", missing, "--screenshot", tmp_.path() + "/x.png", "--timeout", "60"}, true, &out, &err);
        QVERIFY2(code != 0, qPrintable(err));
        QVERIFY2(err.contains("no-such-model"), qPrintable(err));
        QVERIFY(!QFileInfo::exists(tmp_.path() + "/x.png"));
    }
};

QTEST_GUILESS_MAIN(TestHeadless)
#include "test_headless.moc"

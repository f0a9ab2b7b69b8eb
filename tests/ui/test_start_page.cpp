// Every entry point opens what the CLI opens: a .gguf file dropped on the start page opens that file (it used to
// open its parent folder, which has no config.json), a folder opens itself, any other file its folder.
#include <QMimeData>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "start_page.h"

using namespace cloq::ui;

namespace {
// Delivers a drop of `path` on `w` the way Qt does for a file dragged from a file manager.
void drop(QWidget* w, const QString& path) {
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(path)});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(w, &enter);
    QDropEvent ev(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(w, &ev);
}
}  // namespace

class TestStartPage : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;

private Q_SLOTS:
    void droppedGgufOpensTheFile() {
        const QString gguf = dir_.filePath("model.Q4_1.gguf");
        QFile f(gguf);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.close();
        StartPage page;
        QSignalSpy opened(&page, &StartPage::openRequested);
        drop(&page, gguf);
        QCOMPARE(opened.size(), 1);
        QCOMPARE(opened.first().at(0).toString(), QFileInfo(gguf).absoluteFilePath());
    }

    void droppedFolderAndFileInsideIt() {
        QDir(dir_.path()).mkdir("hf");
        const QString folder = dir_.filePath("hf");
        QFile cfg(folder + "/config.json");
        QVERIFY(cfg.open(QIODevice::WriteOnly));
        cfg.close();
        QCOMPARE(model_path_of(folder), QFileInfo(folder).absoluteFilePath());
        QCOMPARE(model_path_of(folder + "/config.json"), QFileInfo(folder).absoluteFilePath());
        QCOMPARE(model_path_of(dir_.filePath("x.GGUF")), QFileInfo(dir_.filePath("x.GGUF")).absoluteFilePath());
    }
};

QTEST_MAIN(TestStartPage)
#include "test_start_page.moc"

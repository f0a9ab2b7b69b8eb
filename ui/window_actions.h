// The main window's menus, actions and keyboard shortcuts (File, View, Analysis, Help), kept out of MainWindow so the
// window only builds and presents. Every action calls the window's or its controller's public API.
#pragma once
#include <QObject>

class QMenu;

namespace cloq::ui {

class MainWindow;

class WindowActions : public QObject {
    Q_OBJECT
public:
    explicit WindowActions(MainWindow* window);  // builds the menu bar of `window`

private:
    QMenu* recentMenu_ = nullptr;
};

}  // namespace cloq::ui

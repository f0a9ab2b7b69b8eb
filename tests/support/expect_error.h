// The bad-input check every suite makes: `f` throws cloq::Error and its message contains every needle (the file
// and the problem, docs/design.md Bad-input policy).
#pragma once
#include <QStringList>
#include <QtTest/QtTest>
#include <functional>

#include "cloq/base/error.h"

namespace cloq::test {

inline void expect_error(const std::function<void()>& f, const QStringList& needles) {
    try {
        f();
        QFAIL(qPrintable("no error; expected one mentioning " + needles.join(", ")));
    } catch (const Error& e) {
        const QString m = e.what();
        for (const auto& n : needles) QVERIFY2(m.contains(n), qPrintable(m + "  (missing: " + n + ")"));
    }
}

}  // namespace cloq::test

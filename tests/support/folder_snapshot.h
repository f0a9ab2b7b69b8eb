// A folder's content as relative path -> SHA-256 (folders as "dir"), so that tests can assert that inputs were not
// touched and that an output is either absent or complete. Optionally, top-level keys of JSON files that legitimately
// differ between two complete runs (wall-clock timings) are dropped before hashing.
#pragma once
#include <QByteArray>
#include <QCryptographicHash>
#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QFileInfo>
#include <QString>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cloq::test {

using FolderSnapshot = std::map<QString, QByteArray>;

inline FolderSnapshot folder_snapshot(const QString& root, const std::vector<std::string>& volatile_json_keys = {}) {
    FolderSnapshot out;
    if (!QFileInfo::exists(root)) return out;
    QDirIterator it(root, QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden | QDir::System,
                    QDirIterator::Subdirectories);
    while (it.hasNext()) {
        const QString path = it.next();
        const QString rel = QDir(root).relativeFilePath(path);
        if (QFileInfo(path).isDir()) {
            out[rel + "/"] = "dir";
            continue;
        }
        QFile f(path);
        if (!f.open(QIODevice::ReadOnly)) {
            out[rel] = "unreadable";
            continue;
        }
        QByteArray bytes = f.readAll();
        if (!volatile_json_keys.empty() && rel.endsWith(".json")) {
            try {
                auto j = nlohmann::json::parse(bytes.toStdString());
                if (j.is_object())
                    for (const auto& k : volatile_json_keys) j.erase(k);
                bytes = QByteArray::fromStdString(j.dump());
            } catch (const nlohmann::json::exception&) {
                // not JSON after all: compared byte for byte
            }
        }
        out[rel] = QCryptographicHash::hash(bytes, QCryptographicHash::Sha256);
    }
    return out;
}

}  // namespace cloq::test

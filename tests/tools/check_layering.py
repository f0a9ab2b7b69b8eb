#!/usr/bin/env python3
"""Checks the dependency order of the source tree (docs/design.md, Architecture); CI runs it (packaging/run-tests.sh).

Rules, each on every quoted or angle-bracket #include:
  1. core/ includes no Qt header and nothing from ui/ or app/: every quoted include of a core file resolves inside
     core/ (its own folder, core/src, core/include) or is a header the build generates there.
  2. Inside core, a folder includes only itself and the folders before it in CONCERNS
     (core/src/<c>/ and core/include/cloq/<c>/ both count as concern <c>).
  3. ui/ and app/ use core's public API only: a core header they include lives in core/include/cloq/.
  4. ui/ includes nothing from app/.
Exit status 1 and one line per violation ("file:line: rule: include") when any rule is broken.
Usage: check_layering.py [ROOT]   (default: the repository this script lives in)
"""
import os
import re
import sys

CONCERNS = ["base", "settings", "io", "tokenize", "model", "quant", "lowrank", "analysis", "export", "pipeline", "finetune", "plan"]
GENERATED = {"cloq_lapack_config.h"}  # core/CMakeLists.txt writes it into the build tree
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh")


def sources(root, top):
    for dirpath, _, files in os.walk(os.path.join(root, top)):
        for f in sorted(files):
            if f.endswith(SOURCE_EXT):
                yield os.path.join(dirpath, f)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield n, m.group(1), m.group(2)


def concern_of(root, path):
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[:2] == ["core", "src"] and len(rel) > 3:
        return rel[2]
    if rel[:3] == ["core", "include", "cloq"] and len(rel) > 4:
        return rel[3]
    return None


def resolve(root, path, inc, search):
    for d in [os.path.dirname(path)] + [os.path.join(root, s) for s in search]:
        cand = os.path.normpath(os.path.join(d, inc))
        if os.path.exists(cand):
            return cand
    return None


def is_qt(inc):
    return inc.startswith("Q") or inc.startswith("qt") or inc.startswith("quazip")


def check(root):
    bad = []
    core_search = ["core/src", "core/include"]
    for path in sources(root, "core"):
        here = concern_of(root, path)
        for n, kind, inc in includes(path):
            where = f"{os.path.relpath(path, root)}:{n}"
            if kind == "<":
                if is_qt(inc):
                    bad.append(f"{where}: core includes Qt: <{inc}>")
                continue
            if inc in GENERATED:
                continue
            target = resolve(root, path, inc, core_search)
            if target is None or not os.path.relpath(target, root).startswith("core" + os.sep):
                bad.append(f'{where}: core includes something outside core/ (ui/, app/ or unknown): "{inc}"')
                continue
            there = concern_of(root, target)
            if here and there and CONCERNS.index(there) > CONCERNS.index(here):
                bad.append(f'{where}: {here}/ may not include {there}/ (order: {" < ".join(CONCERNS)}): "{inc}"')
    for top in ("ui", "app"):
        for path in sources(root, top):
            for n, kind, inc in includes(path):
                if kind == "<":
                    continue
                where = f"{os.path.relpath(path, root)}:{n}"
                if inc.split("/")[0] in CONCERNS and os.path.exists(os.path.join(root, "core", "src", inc)):
                    bad.append(f'{where}: {top}/ includes a private core header (use core/include/cloq/): "{inc}"')
                if top == "ui":
                    target = resolve(root, path, inc, ["ui", "core/include"])
                    if target is None and os.path.exists(os.path.join(root, "app", inc)) or \
                            (target and os.path.relpath(target, root).startswith("app" + os.sep)):
                        bad.append(f'{where}: ui/ includes app/: "{inc}"')
    return bad


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    bad = check(root)
    for line in bad:
        print(line)
    n_files = sum(1 for top in ("core", "ui", "app") for _ in sources(root, top))
    print(f"check_layering: {n_files} files, {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

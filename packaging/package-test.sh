#!/usr/bin/env bash
# Builds the .deb from a finished build folder and installs it into a throw-away root, then starts both programs
# from the installed files. Run by CTest (label `package`, registered when configured with -DCLOQ_PACKAGE_TEST=ON)
# as its own stage of packaging/run-tests.sh.
#
# The throw-away root is an overlay of this machine's / (so the dependencies already installed here are the ones
# apt resolves) in a private mount namespace: `apt-get install ./cloq-studio_*.deb` runs inside it for real
# (maintainer scripts, triggers, dependency check), while the build tree, the source tree and $HOME are hidden
# behind empty tmpfs mounts, so the programs can only run from what the package installed. Nothing on the machine
# changes; the overlay's upper layer is deleted at the end.
#
# Usage: package-test.sh BUILD_DIR [SHARED_DIR]
set -euo pipefail
BUILD=$(cd "${1:?usage: package-test.sh BUILD_DIR [SHARED_DIR]}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$(cd "${2:-$SRC/../shared}" && pwd)
DEMO="$SHARED/models/stories260K"
say() { printf 'package-test: %s\n' "$*"; }
fail() { printf 'package-test: FAIL: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "needs root for the overlay root (mount namespace + chroot); run as root or in a container"
for tool in cpack dpkg-deb appstreamcli unshare chroot; do
  command -v "$tool" >/dev/null || fail "'$tool' not found (packaging/install-deps.sh installs it)"
done

gui=OFF
grep -q '^CLOQ_BUILD_GUI:BOOL=ON' "$BUILD/CMakeCache.txt" && [[ -f "$SRC/app/studio_main.cpp" ]] && gui=ON

# --- 1. build the package ------------------------------------------------------------------------------------
OUTDIR="$BUILD/package"
rm -rf "$OUTDIR" && mkdir -p "$OUTDIR"
say "cpack -G DEB in $BUILD"
(cd "$BUILD" && cpack -G DEB -B "$OUTDIR" >"$OUTDIR/cpack.log" 2>&1) || { cat "$OUTDIR/cpack.log"; fail "cpack failed"; }
shopt -s nullglob
debs=("$OUTDIR"/cloq-studio_*.deb)
((${#debs[@]} == 1)) || fail "expected one cloq-studio_*.deb in $OUTDIR, found ${#debs[@]}"
DEB=${debs[0]}
say "built $(basename "$DEB") ($(du -h "$DEB" | cut -f1))"

# --- 2. static checks: control fields and contents -----------------------------------------------------------
depends=$(dpkg-deb -f "$DEB" Depends)
say "Depends: $depends"
need_deps=(libtorch1.13 libopenblas0-pthread libstdc++6)
[[ $gui == ON ]] && need_deps+=(libqt6core6 libqt6widgets6 libqt6charts6 libqt6svg6 libquazip1-qt6-1)
for d in "${need_deps[@]}"; do
  tr ',' '\n' <<<"$depends" | awk '{print $1}' | grep -qxF -- "$d" || fail "Depends lacks $d"
done
contents=$(dpkg-deb -c "$DEB" | awk '{print $6}')
need_files=(./usr/bin/cloq ./usr/share/man/man1/cloq.1.gz)
[[ $gui == ON ]] && need_files+=(./usr/bin/cloq-studio ./usr/share/applications/org.cloqstudio.studio.desktop
  ./usr/share/metainfo/org.cloqstudio.studio.metainfo.xml ./usr/share/icons/hicolor/scalable/apps/cloq-studio.svg)
for f in "${need_files[@]}"; do
  grep -qx -- "$f" <<<"$contents" || fail "package lacks $f"
done
if grep -q -- '^./work\|/build' <<<"$contents"; then fail "package contains build paths"; fi

WORK=$(mktemp -d /tmp/cloq-package-test.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
dpkg-deb -x "$DEB" "$WORK/tree"
if [[ $gui == ON ]]; then
  say "appstreamcli validate-tree"
  appstreamcli validate-tree --no-net "$WORK/tree" || fail "appstreamcli rejects the installed tree"
fi
for exe in "$WORK"/tree/usr/bin/*; do
  if readelf -d "$exe" | grep -Eq 'R(UN)?PATH'; then fail "$(basename "$exe") carries an RPATH into the build tree"; fi
done

# --- 3. install into an overlay root and run from it ---------------------------------------------------------
mkdir -p "$WORK"/{upper,ovlwork,root,in,out}
cp "$DEB" "$WORK/in/"
[[ -d $DEMO ]] && cp -r "$DEMO" "$WORK/in/demo-model"
[[ -f $SHARED/data/tinystories-valid.txt ]] && cp "$SHARED/data/tinystories-valid.txt" "$WORK/in/calib.txt"
cat >"$WORK/in/inside.sh" <<'INSIDE'
#!/bin/bash
# Runs inside the overlay root: install the package like a user would, then start both programs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive HOME=/root LC_ALL=C.UTF-8
gui=$1
echo "inside: apt-get install ./$(basename /in/*.deb)"
apt-get install -y --no-install-recommends /in/*.deb >/out/apt.log 2>&1 \
  || { cat /out/apt.log; echo "inside: apt-get install failed"; exit 1; }
dpkg -s cloq-studio | grep -q '^Status: install ok installed' || { echo "inside: dpkg does not list cloq-studio"; exit 1; }
for exe in /usr/bin/cloq $([[ $gui == ON ]] && echo /usr/bin/cloq-studio); do
  [[ $(command -v "$(basename "$exe")") == "$exe" ]] || { echo "inside: $exe is not what PATH finds"; exit 1; }
  if ldd "$exe" | grep -q 'not found'; then ldd "$exe"; echo "inside: $exe has unresolved libraries"; exit 1; fi
done
cloq --version | tee /out/version.txt
grep -q '^cloq ' /out/version.txt || { echo "inside: cloq --version printed no version"; exit 1; }
if cloq --help | grep -q '^  info '; then
  cloq info --model /in/demo-model | tee /out/info.txt
  [[ -s /out/info.txt ]] || { echo "inside: cloq info printed nothing"; exit 1; }
fi
if [[ $gui == ON ]]; then
  QT_QPA_PLATFORM=offscreen cloq-studio --model /in/demo-model --calib-text /in/calib.txt --screenshot /out/screenshot.png >/out/studio.log 2>&1 \
    || { cat /out/studio.log; echo "inside: cloq-studio --screenshot failed"; exit 1; }
  [[ -s /out/screenshot.png ]] || { echo "inside: cloq-studio wrote no screenshot"; exit 1; }
fi
echo "inside: OK"
INSIDE
chmod +x "$WORK/in/inside.sh"

say "installing into an overlay root of / (private mount namespace)"
# Everything below happens in a new mount namespace: the mounts vanish with it, even if a command fails.
unshare --mount --propagation private bash -euo pipefail -c '
  W=$1; SRC=$2; BUILD=$3; SHARED=$4; gui=$5
  R=$W/root
  mount -t overlay overlay -o lowerdir=/,upperdir=$W/upper,workdir=$W/ovlwork "$R"
  mount --rbind /dev "$R/dev"; mount -t proc proc "$R/proc"; mount --rbind /sys "$R/sys"
  mount -t tmpfs tmpfs "$R/tmp"; mount -t tmpfs tmpfs "$R/root"
  # Hide the source, build and shared trees: the programs may only use what the package installed.
  for d in "$SRC" "$BUILD" "$SHARED"; do
    [[ -d $R$d ]] && mount -t tmpfs tmpfs "$R$d"
  done
  mkdir -p "$R/in" "$R/out"
  mount --bind "$W/in" "$R/in"; mount --bind "$W/out" "$R/out"
  chroot "$R" /in/inside.sh "$gui"
' bash "$WORK" "$SRC" "$BUILD" "$SHARED" "$gui" || fail "installing or running from the overlay root failed"
if [[ $gui == ON ]]; then
  mkdir -p "$BUILD/package" && cp "$WORK/out/screenshot.png" "$BUILD/package/installed-screenshot.png"
  say "screenshot from the installed cloq-studio: $BUILD/package/installed-screenshot.png"
fi
say "OK: $(basename "$DEB") installs and runs ($(cat "$WORK/out/version.txt"))"

#!/usr/bin/env bash
# Build the Linux installer: dist/xrayviewer-<version>-linux-x86_64.tar.gz (a folder holding the
# `xrayviewer` executable) and, where dpkg-deb exists, dist/xrayviewer_<version>_amd64.deb. See docs/installer.md.
#
#   bash scripts/build-installer.sh            the lean CPU viewer build (ONNX Runtime, no torch)
#   bash scripts/build-installer.sh --full     the full build (training, the wizard, torch; CUDA as its wheel)
#   options: --onefile (one self-extracting file), --no-deb, --no-strip (lean: keep the libraries' symbols),
#            --dist DIR (default dist/),
#            --build-dir DIR (build venv and PyInstaller work files; default build/),
#            --torch-index URL (--full: torch and torchvision from this index, e.g. PyTorch's CPU wheels
#            https://download.pytorch.org/whl/cpu, for a full build without CUDA)
#
# Needs Python 3.11 with venv (scripts/install.sh installs it on Debian) and binutils (installed here when
# missing). Creates its own build venv (build/venv-lean or build/venv-full, reused while pyproject.toml is
# unchanged), runs PyInstaller on build_installer.spec, checks that the lean build holds no torch, runs the
# frozen `xrayviewer --selftest`, then packs the archive. A rerun rebuilds the app (about a minute), not the venv.
set -euo pipefail
{  # read whole before it runs: editing or pulling this file mid-build cannot change the build
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

flavour=lean onefile=0 deb=1 strip=1 dist="$here/dist" build="$here/build" torch_index=""
while [ $# -gt 0 ]; do
  case "$1" in
    --full) flavour=full ;;
    --lean) flavour=lean ;;
    --onefile) onefile=1 ;;
    --no-deb) deb=0 ;;
    --no-strip) strip=0 ;;
    --torch-index) torch_index="$2"; shift ;;
    --dist) dist="$(mkdir -p "$2" && cd "$2" && pwd)"; shift ;;
    --build-dir) build="$(mkdir -p "$2" && cd "$2" && pwd)"; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "build-installer: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

PYTHON="${PYTHON:-python3}"
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' xrayviewer/__init__.py)"
arch="$(uname -m)"
name="xrayviewer-$version-linux-$arch"
[ "$flavour" = full ] && name="xrayviewer-full-$version-linux-$arch"
start=$(date +%s)

if ! command -v objdump >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then  # PyInstaller needs it
  echo "[build-installer] installing binutils"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq binutils >/dev/null
fi

# --- the build venv: only what this build ships (the lean one must not hold torch) -------------------------
venv="$build/venv-$flavour"
extras="installer"; [ "$flavour" = full ] && extras="train,installer"
stamp="$venv/.xrayviewer-build"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1) $extras $torch_index"
if [ ! -x "$venv/bin/python" ]; then
  echo "[build-installer] creating the build venv $venv ($($PYTHON --version))"
  "$PYTHON" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[build-installer] installing .[$extras] into the build venv (first run: a few minutes)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  if [ -n "$torch_index" ]; then  # the pins of pyproject.toml, from that index (2.14.1+cpu satisfies ==2.14.1)
    pins=$(grep -oE '"(torch|torchvision)==[^"]+"' pyproject.toml | tr -d '"')
    "$venv/bin/python" -m pip install -q --index-url "$torch_index" $pins
  fi
  "$venv/bin/python" -m pip install -q ".[$extras]"
  echo "$want" > "$stamp"
fi
if [ "$flavour" = lean ] && "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "[build-installer] the lean build venv $venv holds torch: remove it and rerun" >&2; exit 1
fi

# --- PyInstaller ---------------------------------------------------------------------------------------------
echo "[build-installer] PyInstaller: the $flavour build"
export XRAYVIEWER_BUILD="$flavour" XRAYVIEWER_ONEFILE="$onefile"
"$venv/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$build/pyinstaller-dist-$flavour" \
  --workpath "$build/pyinstaller-work-$flavour" build_installer.spec
app="$build/pyinstaller-dist-$flavour/xrayviewer"
stage="$build/stage-$flavour/$name"
rm -rf "$build/stage-$flavour"
mkdir -p "$stage"
if [ "$onefile" = 1 ]; then cp "$app" "$stage/xrayviewer"; else cp -a "$app/." "$stage/"; fi
cp scripts/installer/README-install.txt "$stage/README.txt"
if [ "$flavour" = lean ]; then
  "$venv/bin/python" scripts/installer/spec_helpers.py check-lean "$stage"
fi
# the lean build's libraries lose their symbols (50 MB; the selftest below and CI run on the result); the full
# build's torch and CUDA libraries are left as their wheels ship them
if [ "$flavour" = lean ] && [ "$strip" = 1 ] && [ "$onefile" = 0 ] && command -v strip >/dev/null 2>&1; then
  "$venv/bin/python" scripts/installer/spec_helpers.py strip "$stage"
fi

echo "[build-installer] frozen selftest"
QT_QPA_PLATFORM=offscreen "$stage/xrayviewer" --selftest

# --- the archive and the .deb -------------------------------------------------------------------------------
mkdir -p "$dist"
archive="$dist/$name.tar.gz"
echo "[build-installer] packing $archive"
tar -C "$build/stage-$flavour" -cf - "$name" | gzip -6 > "$archive.part"
mv "$archive.part" "$archive"
if [ "$deb" = 1 ] && command -v dpkg-deb >/dev/null 2>&1; then
  bash scripts/installer/make-deb.sh "$stage" "$version" "$flavour" "$dist"
fi
echo "[build-installer] done in $(( $(date +%s) - start )) s: unpacked $(du -sm "$stage" | cut -f1) MB," \
  "archive $(( $(stat -c %s "$archive") / 1048576 )) MB"
ls -l "$dist"
exit 0
}

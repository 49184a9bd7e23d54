#!/usr/bin/env bash
# Install everything XRayViewer needs on a Debian machine: the Debian packages Qt and Xvfb need,
# a Python virtual environment in .venv, and the package with its test tools. Idempotent: a second
# run only checks (a few seconds). Usage: scripts/install.sh   (sourced by run-app.sh / run-tests.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

# Qt's xcb/offscreen platform plugins, OpenGL/EGL, fonts, D-Bus, and Xvfb for screenshots.
DEB_PACKAGES=(libegl1 libgl1 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 libxkbcommon0
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libx11-xcb1
  libxrender1 libxi6 xvfb xauth fonts-dejavu-core)
PYTHON="${PYTHON:-python3}"

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then missing+=(python3 python3-venv python3-dev); fi
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -c "import venv, ensurepip" 2>/dev/null; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install] Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[install] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.xrayviewer-installed
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c "import xrayviewer" 2>/dev/null; then
  echo "[install] installing xrayviewer and its dependencies into .venv (first run: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

#!/usr/bin/env bash
# Install everything (idempotent) and start the XRayViewer app. Extra arguments go to the app,
# e.g. scripts/run-app.sh ../shared/data/dicom/siim_cr_chest_pa_jpegbaseline.dcm
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/install.sh"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "[run-app] no display found: starting on a virtual screen (Xvfb). Use a desktop session to see the window."
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$here/.venv/bin/xrayviewer" "$@"
fi
exec "$here/.venv/bin/xrayviewer" "$@"

#!/usr/bin/env bash
# Pack a built installer folder as a Debian package: /opt/xrayviewer (the folder), /usr/bin/xrayviewer and a
# desktop entry. Usage: make-deb.sh FOLDER VERSION lean|full DIST   (scripts/build-installer.sh calls it)
set -euo pipefail
folder="$1" version="$2" flavour="$3" dist="$4"
package=xrayviewer; [ "$flavour" = full ] && package=xrayviewer-full
root="$(mktemp -d)"
chmod 755 "$root"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications"
cp -a "$folder" "$root/opt/xrayviewer"
ln -s /opt/xrayviewer/xrayviewer "$root/usr/bin/xrayviewer"
cat > "$root/usr/share/applications/xrayviewer.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=XRayViewer
Comment=Chest X-ray viewer with a second opinion
Exec=/opt/xrayviewer/xrayviewer %F
Terminal=false
Categories=Graphics;MedicalSoftware;Science;
MimeType=application/dicom;image/png;image/jpeg;image/tiff;
DESKTOP
size_kb="$(du -sk "$root/opt" | cut -f1)"
conflicts=xrayviewer-full; [ "$flavour" = full ] && conflicts=xrayviewer
cat > "$root/DEBIAN/control" <<CONTROL
Package: $package
Version: $version
Architecture: amd64
Maintainer: XRayViewer maintainers <xrayviewer@localhost>
Installed-Size: $size_kb
Depends: libc6 (>= 2.31), libgl1, libegl1, libxkbcommon-x11-0, libxcb-cursor0, fonts-dejavu-core
Conflicts: $conflicts
Section: science
Priority: optional
Description: Chest X-ray viewer with a DenseNet second opinion ($flavour build)
 Reads DICOM, PNG and JPEG chest films with window/level tools and runs the bundled models (scores,
 operating points, heat maps) on the CPU, offline. After installing, run: xrayviewer --selftest
CONTROL
out="$dist/${package}_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zgzip -z6 --build "$root" "$out" >/dev/null
echo "[make-deb] $out"

#!/usr/bin/env bash
# Package a PyInstaller one-folder bundle as a .deb: /opt/labeltune, /usr/bin/labeltune, a menu entry and icon.
#   installer/linux/build_deb.sh BUNDLE_DIR VERSION OUT_DIR
# DEB_COMPRESSION (xz, gzip, zstd or none; default xz) and DEB_LEVEL (default 1) choose dpkg-deb's compression:
# xz -1 keeps a 4 GB CUDA bundle to about half its size in minutes; xz -6 saves ~10 % more for much longer.
set -euo pipefail
bundle=$(cd "$1" && pwd)
version=$2
out=$(mkdir -p "$3" && cd "$3" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
arch=$(dpkg --print-architecture)

stage=$(mktemp -d "$out/deb-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/labeltune
mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
    "$root/usr/share/icons/hicolor/256x256/apps" "$root/usr/share/doc/labeltune"
# hard links when the stage is on the bundle's file system (no 4 GB copy), a copy otherwise
cp -al "$bundle" "$root/opt/labeltune" 2>/dev/null || { rm -rf "$root/opt/labeltune"; cp -a "$bundle" "$root/opt/labeltune"; }
chmod -R u+rwX,go+rX,go-w "$root/opt/labeltune"
ln -s /opt/labeltune/labeltune "$root/usr/bin/labeltune"
install -m 644 "$here/labeltune.desktop" "$root/usr/share/applications/labeltune.desktop"
install -m 644 "$here/../labeltune.png" "$root/usr/share/icons/hicolor/256x256/apps/labeltune.png"
install -m 644 "$here/copyright" "$root/usr/share/doc/labeltune/copyright"
installed_kb=$(du -sk "$root" | cut -f1)

# Qt's xcb platform plugin and OpenGL need these on a stock Debian/Ubuntu desktop (the bundle carries Qt,
# Python, torch and CUDA itself). 't64' alternatives: Debian 13 and Ubuntu 24.04 renamed those packages.
cat > "$root/DEBIAN/control" <<CONTROL
Package: labeltune
Version: $version
Architecture: $arch
Maintainer: LabelTune developers <labeltune-developers@example.org>
Installed-Size: $installed_kb
Depends: libc6 (>= 2.31), libgl1, libegl1, libopengl0, libfontconfig1, libfreetype6, libdbus-1-3,
 libglib2.0-0t64 | libglib2.0-0, libx11-6, libx11-xcb1, libxext6, libxrender1, libxi6, libsm6, libice6,
 libxkbcommon0, libxkbcommon-x11-0, libxcb1, libxcb-cursor0, libxcb-icccm4, libxcb-image0,
 libxcb-keysyms1, libxcb-randr0, libxcb-render0, libxcb-render-util0, libxcb-shape0, libxcb-shm0,
 libxcb-sync1, libxcb-xfixes0, libxcb-xinerama0, libxcb-xkb1
Recommends: xdg-utils
Section: science
Priority: optional
Description: label images or XRD patterns and fine-tune pretrained networks, offline
 LabelTune lets domain scientists label photographs or powder X-ray diffraction
 patterns, fine-tune a pretrained network on them (on an NVIDIA GPU when there is
 one, else the CPU) and use it offline. Projects live in ~/Documents/LabelTune,
 weights and caches in the user's data folders; removing the package leaves them.
CONTROL
install -m 755 "$here/postinst" "$root/DEBIAN/postinst"
install -m 755 "$here/postrm" "$root/DEBIAN/postrm"

deb="$out/labeltune_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" -z"${DEB_LEVEL:-1}" --build "$root" "$deb"
echo "$deb"

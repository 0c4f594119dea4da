#!/usr/bin/env bash
# Wrap the PyInstaller app bundle (dist/LabelTune.app, from installer/labeltune.spec) in a drag-to-install .dmg.
#   installer/macos/build_dmg.sh APP_BUNDLE VERSION OUT_DIR
# The app is signed ad hoc (codesign -s -), which Apple Silicon requires to run it at all; a release for
# other people's Macs is signed with a Developer ID and notarised instead: set MACOS_SIGN_IDENTITY to the
# identity's name and the same script signs with it (with the hardened runtime, as notarisation requires).
# User data lives in ~/Documents/LabelTune and ~/Library/Application Support/labeltune, outside the app:
# replacing the app keeps it, dragging the app to the bin leaves it.
set -euo pipefail
app=$(cd "$1" && pwd)
version=$2
out=$(mkdir -p "$3" && cd "$3" && pwd)
identity=${MACOS_SIGN_IDENTITY:--}

if [ "$identity" = "-" ]; then
    codesign --force --deep --sign - "$app"
else
    codesign --force --deep --options runtime --timestamp --sign "$identity" "$app"
fi
codesign --verify --deep --strict "$app"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/LabelTune.app"
ln -s /Applications "$stage/Applications"
dmg="$out/LabelTune-$version.dmg"
rm -f "$dmg"
hdiutil create -volname "LabelTune $version" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
echo "$dmg"

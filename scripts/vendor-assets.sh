#!/usr/bin/env bash
# Refreshes the console's vendored assets from npm (htmx, the Vazirmatn font): the files are committed,
# so running the project needs neither npm nor the internet. Run this only to change their versions.
#   scripts/vendor-assets.sh            (idempotent: does nothing when the files are there)
#   scripts/vendor-assets.sh --force    (fetch again)
set -euo pipefail
cd "$(dirname "$0")/.."

HTMX_VERSION=2.0.11
VAZIRMATN_VERSION=33.0.3
dest=backend/console/static/vendor

if [ "${1:-}" != "--force" ] && [ -f "$dest/htmx.min.js" ] && [ -f "$dest/vazirmatn/Vazirmatn-Regular.woff2" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "vendor-assets: npm is needed to fetch the assets" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@$HTMX_VERSION" "vazirmatn@$VAZIRMATN_VERSION" >/dev/null)
mkdir -p "$work/htmx" "$work/vazirmatn" "$dest/vazirmatn"
tar xzf "$work/htmx.org-$HTMX_VERSION.tgz" -C "$work/htmx"
tar xzf "$work/vazirmatn-$VAZIRMATN_VERSION.tgz" -C "$work/vazirmatn"
cp "$work/htmx/package/dist/htmx.min.js" "$dest/htmx.min.js"
cp "$work/htmx/package/LICENSE" "$dest/htmx.LICENSE.txt"
for weight in Regular Bold; do
  cp "$work/vazirmatn/package/fonts/webfonts/Vazirmatn-$weight.woff2" "$dest/vazirmatn/"
done
cp "$work/vazirmatn/package/OFL.txt" "$dest/vazirmatn/OFL.txt"
echo "vendor-assets: htmx $HTMX_VERSION and Vazirmatn $VAZIRMATN_VERSION in $dest"

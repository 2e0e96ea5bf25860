#!/usr/bin/env bash
# Refreshes the console's vendored assets from npm (htmx, Chart.js, the Vazirmatn font): the files are committed,
# so running the project needs neither npm nor the internet. Run this only to change their versions.
#   scripts/vendor-assets.sh            (idempotent: does nothing when the files are there)
#   scripts/vendor-assets.sh --force    (fetch again)
set -euo pipefail
cd "$(dirname "$0")/.."

HTMX_VERSION=2.0.11
VAZIRMATN_VERSION=33.0.3
CHARTJS_VERSION=4.5.1
dest=backend/console/static/vendor

if [ "${1:-}" != "--force" ] && [ -f "$dest/htmx.min.js" ] && [ -f "$dest/chart.umd.min.js" ] && [ -f "$dest/vazirmatn/Vazirmatn-Regular.woff2" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "vendor-assets: npm is needed to fetch the assets" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@$HTMX_VERSION" "vazirmatn@$VAZIRMATN_VERSION" "chart.js@$CHARTJS_VERSION" >/dev/null)
mkdir -p "$work/htmx" "$work/vazirmatn" "$work/chartjs" "$dest/vazirmatn"
tar xzf "$work/htmx.org-$HTMX_VERSION.tgz" -C "$work/htmx"
tar xzf "$work/vazirmatn-$VAZIRMATN_VERSION.tgz" -C "$work/vazirmatn"
tar xzf "$work/chart.js-$CHARTJS_VERSION.tgz" -C "$work/chartjs"
cp "$work/htmx/package/dist/htmx.min.js" "$dest/htmx.min.js"
cp "$work/htmx/package/LICENSE" "$dest/htmx.LICENSE.txt"
# The UMD build: one file, no bundler, used by the reports page.
cp "$work/chartjs/package/dist/chart.umd.min.js" "$dest/chart.umd.min.js"
cp "$work/chartjs/package/LICENSE.md" "$dest/chart.js.LICENSE.md"
for weight in Regular Bold; do
  cp "$work/vazirmatn/package/fonts/webfonts/Vazirmatn-$weight.woff2" "$dest/vazirmatn/"
done
cp "$work/vazirmatn/package/OFL.txt" "$dest/vazirmatn/OFL.txt"
echo "vendor-assets: htmx $HTMX_VERSION, Chart.js $CHARTJS_VERSION and Vazirmatn $VAZIRMATN_VERSION in $dest"

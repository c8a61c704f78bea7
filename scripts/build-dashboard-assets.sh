#!/usr/bin/env bash
# Rebuild the dashboard's vendored chart libraries (checked in as build output).
#
#   scripts/build-dashboard-assets.sh
#
# Installs the exact versions pinned in src/tallystick/dashboard/assets-src/package-lock.json
# (npm ci, install scripts off) in a temporary directory, then copies the browser builds of
# vega, vega-lite and vega-embed and bundles vega-interpreter (ESM only upstream) into
# src/tallystick/dashboard/static/vendor/, with their licences and a VERSIONS file.
# The dashboard serves these files itself: nothing is fetched from the internet at run time.
# To upgrade: edit the versions in assets-src/package.json, run
# `npm install --package-lock-only` there, then this script, and commit all three.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/src/tallystick/dashboard/assets-src"
out="$root/src/tallystick/dashboard/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$src/package.json" "$src/package-lock.json" "$src/interpreter.js" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

# esbuild's binary comes from its platform package (@esbuild/<os>-<arch>); with install
# scripts off, run that binary directly.
esbuild="$(find "$work/node_modules/@esbuild" -path '*/bin/esbuild' -type f | head -n 1)"
if [[ -z "$esbuild" ]]; then
    echo "build-dashboard-assets: no esbuild binary for this platform in node_modules/@esbuild" >&2
    exit 1
fi

rm -rf "$out"
mkdir -p "$out"
nm="$work/node_modules"
cp "$nm/vega/build/vega.min.js" "$nm/vega-lite/build/vega-lite.min.js" "$nm/vega-embed/build/vega-embed.min.js" "$out/"
"$esbuild" "$work/interpreter.js" --bundle --minify --format=iife --global-name=vegaInterpreter \
    --log-level=warning --outfile="$out/vega-interpreter.min.js"
# Source-map comments would make the browser ask for files we do not ship.
sed -i -e 's|//# sourceMappingURL=.*$||' "$out"/*.js

{
    echo "Built by scripts/build-dashboard-assets.sh from the npm registry; do not edit."
    for pkg in vega vega-lite vega-embed vega-interpreter; do
        version="$(node -p "require('$nm/$pkg/package.json').version")"
        licence="$(node -p "require('$nm/$pkg/package.json').license")"
        echo "$pkg $version ($licence)"
        cp "$nm/$pkg/LICENSE" "$out/LICENSE.$pkg"
    done
} >"$out/VERSIONS"
ls -l "$out"

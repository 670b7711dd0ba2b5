#!/bin/bash
# axe.sh - print the path of axe-core's axe.min.js (the accessibility engine the browser test
# runs on each page), installed with npm into a cache directory the first time and reused
# after. The version is pinned, so every run checks against the same rules. Never a CDN:
# the file is read by the test and handed to the browser over its DevTools connection.
# Exit 1 (and say why on stderr) when npm is missing or the install fails.
set -euo pipefail
version=4.10.2
cache=${CRIER_AXE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crier/axe-core-$version}
file=$cache/node_modules/axe-core/axe.min.js
if [ ! -s "$file" ]; then
  command -v npm >/dev/null || { echo "npm is not installed (.ci/install-deps.sh)" >&2; exit 1; }
  mkdir -p "$cache"
  # --ignore-scripts: a test fetches a file, it runs nothing of the package's
  npm install --prefix "$cache" --no-audit --no-fund --ignore-scripts --silent \
    "axe-core@$version" >&2
  [ -s "$file" ] || { echo "npm installed no $file" >&2; exit 1; }
fi
echo "$file"

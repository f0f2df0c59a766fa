#!/usr/bin/env bash
# Vendor the browser assets the HTML book needs (RequireJS, the ipywidgets HTML manager, MathJax 3) from
# the npm packages pinned in package.json / package-lock.json into book/_vendor/, so that the built book
# loads nothing from a CDN. book/_vendor/ is a build product (git-ignored); the local Sphinx extension
# book/_ext/offline_assets.py copies it to <html>/_static/_vendor/ at build time.
#
# Why not book/_static/vendor/: jupyter-book 1.x adds EVERY *.js / *.css found (recursively) under
# book/_static/ to EVERY page, which would inject all MathJax extensions etc. into each page.
#
# Idempotent: when book/_vendor/.stamp matches the lock file's hash nothing is done (no network needed);
# otherwise `npm ci` (or `npm install` when there is no lock file yet) runs in the repository root and the
# needed files are copied into a fresh book/_vendor/ that replaces the old one in one move.
#
#   bash scripts/vendor_js.sh          # vendor if needed, print the vendored folder
#   bash scripts/vendor_js.sh --force  # reinstall and re-copy
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DEST="$ROOT/book/_vendor"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

log() { echo "[vendor_js] $*" >&2; }

command -v npm >/dev/null || { log "npm is not installed (Node.js >= 18 needed)"; exit 1; }
[ -f package.json ] || { log "no package.json in $ROOT"; exit 1; }

hash_inputs() { cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1; }
# The stamp also records this script's hash, so changing what gets copied re-vendors.
want="$(hash_inputs) $(sha256sum "$0" | cut -d' ' -f1)"

required=(require.js html-manager/embed-amd.js mathjax/tex-svg.js)
complete() { for f in "${required[@]}"; do [ -s "$DEST/$f" ] || return 1; done; }

if [ "$FORCE" = 0 ] && [ -f "$DEST/.stamp" ] && [ "$(cat "$DEST/.stamp")" = "$want" ] && complete; then
  log "up to date: $DEST"
  echo "$DEST"
  exit 0
fi

# 1. Install the pinned packages (scripts are not run: only prebuilt dist files are used).
NPM_FLAGS=(--ignore-scripts --no-audit --no-fund --loglevel=error)
if [ -f package-lock.json ]; then
  nm_stamp="node_modules/.vendor_js_lock"
  if [ "$FORCE" = 0 ] && [ -f "$nm_stamp" ] && [ "$(cat "$nm_stamp")" = "$(hash_inputs)" ]; then
    log "node_modules matches package-lock.json"
  else
    log "npm ci"
    npm ci "${NPM_FLAGS[@]}" >&2
    hash_inputs > "$nm_stamp"
  fi
else
  log "no package-lock.json: npm install (creates it)"
  npm install "${NPM_FLAGS[@]}" >&2
  want="$(hash_inputs) $(sha256sum "$0" | cut -d' ' -f1)"
fi

NM="$ROOT/node_modules"
pkgver() { node -p "require('$NM/$1/package.json').version"; }
pkglic() { node -p "require('$NM/$1/package.json').license"; }

# 2. Copy only what the pages load, into a staging folder.
STAGE="$(mktemp -d "$ROOT/book/.vendor_stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

# RequireJS (the npm package ships only the unminified build; 86 kB).
cp "$NM/requirejs/require.js" "$STAGE/require.js"

# @jupyter-widgets/html-manager AMD bundle. It sets its webpack publicPath to its own URL's folder and
# loads the bundled Font Awesome fonts (hashed names: *.woff2, *.woff, *.ttf, *.eot, *.svg) from there,
# so they sit next to it. There are no lazily loaded JS chunks in 1.x (checked below).
HM="$NM/@jupyter-widgets/html-manager/dist"
mkdir -p "$STAGE/html-manager"
cp "$HM/embed-amd.js" "$STAGE/html-manager/"
for f in "$HM"/*.woff2 "$HM"/*.woff "$HM"/*.ttf "$HM"/*.eot "$HM"/*.svg; do
  [ -e "$f" ] && cp "$f" "$STAGE/html-manager/"
done
[ -f "$HM/embed.js.LICENSE.txt" ] && cp "$HM/embed.js.LICENSE.txt" "$STAGE/html-manager/LICENSE-third-party.txt"
# Every hashed asset name the bundle mentions must have been copied.
missing=$(grep -oE '[0-9a-f]{20}\.(woff2?|ttf|eot|svg|js)' "$HM/embed-amd.js" | sort -u | while read -r a; do
  [ -e "$STAGE/html-manager/$a" ] || echo "$a"; done)
[ -z "$missing" ] || { log "embed-amd.js refers to files not vendored: $missing"; exit 1; }

# MathJax 3, SVG output: the glyphs are paths inside tex-svg.js, so no web fonts are needed.
# Also: TeX extensions (loaded on demand by `autoload`), the menu and accessibility components with the
# speech-rule-engine maps (loaded only if a reader turns on the explorer from the MathJax menu).
MJ="$NM/mathjax/es5"
mkdir -p "$STAGE/mathjax/input/tex"
cp "$MJ/tex-svg.js" "$STAGE/mathjax/"
cp -r "$MJ/input/tex/extensions" "$STAGE/mathjax/input/tex/"
cp -r "$MJ/ui" "$MJ/a11y" "$MJ/sre" "$STAGE/mathjax/"
cp "$NM/mathjax/LICENSE" "$STAGE/mathjax/LICENSE"

{
  echo "# Vendored by scripts/vendor_js.sh from npm packages (see package-lock.json)."
  for p in requirejs @jupyter-widgets/html-manager mathjax; do
    echo "$p $(pkgver "$p") license=$(pkglic "$p")"
  done
} > "$STAGE/VERSIONS.txt"
echo "$want" > "$STAGE/.stamp"

# 3. Swap in the new folder.
rm -rf "$DEST.old"
[ -e "$DEST" ] && mv "$DEST" "$DEST.old"
mv "$STAGE" "$DEST"
chmod -R a+rX "$DEST"
rm -rf "$DEST.old"
trap - EXIT
log "vendored into $DEST ($(du -sh "$DEST" | cut -f1))"
echo "$DEST"

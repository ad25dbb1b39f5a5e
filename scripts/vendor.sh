#!/usr/bin/env bash
# Re-create static/vendor/ from the pinned npm packages.
set -euo pipefail
HTMX=2.0.11
SSE=2.2.4
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "htmx.org@$HTMX" "htmx-ext-sse@$SSE" >/dev/null
mkdir htmx sse
tar xzf "htmx.org-$HTMX.tgz" -C htmx
tar xzf "htmx-ext-sse-$SSE.tgz" -C sse
cp htmx/package/dist/htmx.min.js "$here/static/vendor/htmx-$HTMX.min.js"
cp htmx/package/LICENSE "$here/static/vendor/htmx.LICENSE"
cp sse/package/dist/sse.min.js "$here/static/vendor/htmx-ext-sse-$SSE.min.js"
cp sse/package/LICENSE "$here/static/vendor/htmx-ext-sse.LICENSE"
echo "vendored htmx $HTMX and htmx-ext-sse $SSE into static/vendor/"

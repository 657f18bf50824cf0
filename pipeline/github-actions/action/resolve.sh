#!/usr/bin/env bash
# The action's first step: decides which snapguard to install and prints,
# into $GITHUB_OUTPUT, `mode` (release or source), `url` (the archive),
# `sha256` (its published checksum) and `key` (the cache key part).
#
#   version input "v0.3.1"  that release; missing for this runner: an error
#   version input "latest"  the newest release
#   version input "source"  build the action's own source (slow)
#   no version input        the action's ref when it is a published release
#                           (`uses: …@v0.3.1`), else the newest release: a
#                           commit SHA, a branch or a major tag such as v1
#
# The cache key holds the archive's SHA-256, so a tag that moves to a new
# build can never be served the old binary from the cache.
set -euo pipefail
out="${GITHUB_OUTPUT:-/dev/null}"
say() { echo "$1" >> "$out"; }

version="${SNAPGUARD_VERSION:-}"
ref="${SNAPGUARD_REF:-}"
if [ "$version" = "source" ]; then
  say "mode=source"
  say "key=source-${ref:-unknown}-$(date -u +%Y%m%d)"
  echo "building snapguard from the action's source (version: source)"
  exit 0
fi

case "$(uname -s)" in
  Linux) os="unknown-linux-gnu" ;;
  Darwin) os="apple-darwin" ;;
  *) echo "::error::snapguard: no release is built for $(uname -s); use version: source" >&2; exit 1 ;;
esac
arch="$(uname -m)"
[ "$arch" = "arm64" ] && arch="aarch64"
asset="snapguard-$arch-$os.tar.gz"
base="${SNAPGUARD_DOWNLOAD_URL:-https://github.com}/${SNAPGUARD_REPOSITORY:?}/releases"
url_of() {
  case "$1" in
    latest) echo "$base/latest/download/$asset" ;;
    *) echo "$base/download/$1/$asset" ;;
  esac
}
# Sets `sha` to the release's published checksum, or empty when the release
# is not published (HTTP 4xx; a missing file:// in tests). A network failure
# is not a missing release: it stops here, saying so.
checksum_of() {
  local url err text rc=0
  url="$(url_of "$1").sha256"
  err="$(mktemp)"
  text="$(curl -fsSL --retry 3 "$url" 2>"$err")" || rc=$?
  sha=""
  case "$rc" in
    0) sha="$(echo "$text" | cut -d' ' -f1)" ;;
    22|37) ;;
    *)
      echo "::error::snapguard: cannot reach $url (curl exit $rc: $(tr '\n' ' ' < "$err")): a network failure, not a missing release; retry the job" >&2
      rm -f "$err"
      exit 1
      ;;
  esac
  rm -f "$err"
}

explicit=true
if [ -z "$version" ]; then
  explicit=false
  version="${ref:-latest}"
fi
checksum_of "$version"
if [ -z "$sha" ] && [ "$explicit" = false ] && [ "$version" != latest ]; then
  echo "no published snapguard release \`$version\` (the action's ref); installing the newest release. Set \`version:\` to pin one."
  version="latest"
  checksum_of latest
fi
if ! [[ "$sha" =~ ^[0-9a-f]{64}$ ]]; then
  echo "::error::snapguard: no published release \`$version\` with $asset and its .sha256; set \`version:\` to a published release, or \`source\` to build the action's own source" >&2
  exit 1
fi
say "mode=release"
say "url=$(url_of "$version")"
say "sha256=$sha"
say "key=$sha"
echo "snapguard $version for $arch-$os: $sha"

#!/usr/bin/env bash
# The action's install step: puts `snapguard` and `run.sh` in ~/.snapguard/bin.
# A release published for this runner under SNAPGUARD_VERSION (the `version`
# input, else the action's ref: `uses: …/snapguard@v1` looks for v1) is
# downloaded and its SHA-256 checked; otherwise the action's own source is
# built (cached by the previous step, so only the first run of a ref pays).
set -euo pipefail
bin="$HOME/.snapguard/bin"
mkdir -p "$bin"
cp "$SNAPGUARD_SOURCE/pipeline/github-actions/action/run.sh" "$bin/run.sh"
chmod +x "$bin/run.sh"
echo "$bin" >> "${GITHUB_PATH:-/dev/null}"
if [ -x "$bin/snapguard" ]; then
  echo "snapguard $("$bin/snapguard" --version | cut -d' ' -f2) (cached)"
  exit 0
fi
if [ -n "${SNAPGUARD_VERSION:-}" ] && [ -n "${SNAPGUARD_REPOSITORY:-}" ]; then
  target="$(uname -m)-unknown-linux-gnu"
  url="${SNAPGUARD_DOWNLOAD_URL:-https://github.com}/$SNAPGUARD_REPOSITORY/releases/download/$SNAPGUARD_VERSION/snapguard-$target.tar.gz"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # A release publishes the archive and its SHA-256; without both, build.
  if curl -fsSL -o "$tmp/archive.tar.gz" "$url" 2>/dev/null &&
     curl -fsSL -o "$tmp/archive.sha256" "$url.sha256" 2>/dev/null; then
    expected="$(cut -d' ' -f1 < "$tmp/archive.sha256")"
    actual="$(sha256sum "$tmp/archive.tar.gz" | cut -d' ' -f1)"
    if [ "$expected" != "$actual" ]; then
      echo "::error::snapguard $SNAPGUARD_VERSION: the download's SHA-256 is $actual, the published one $expected; not installing it" >&2
      exit 1
    fi
    tar -xzf "$tmp/archive.tar.gz" -C "$tmp" snapguard
    install -m 0755 "$tmp/snapguard" "$bin/snapguard"
    echo "snapguard $SNAPGUARD_VERSION downloaded ($target, SHA-256 checked)"
    exit 0
  fi
  echo "no published snapguard $SNAPGUARD_VERSION for $target; building from source"
fi
cargo install --locked --path "$SNAPGUARD_SOURCE" --root "$HOME/.snapguard" --bin snapguard

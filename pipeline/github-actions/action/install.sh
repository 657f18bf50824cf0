#!/usr/bin/env bash
# The action's install step: puts `snapguard` and `run.sh` in ~/.snapguard/bin.
# A published release for this runner is downloaded when SNAPGUARD_VERSION is
# set and one exists; otherwise the action's own source is built (cached by
# the previous step, so only the first run of a ref pays for it).
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
  url="https://github.com/$SNAPGUARD_REPOSITORY/releases/download/$SNAPGUARD_VERSION/snapguard-$target.tar.gz"
  if curl -fsSL "$url" | tar -xz -C "$bin" snapguard 2>/dev/null; then
    echo "snapguard $SNAPGUARD_VERSION downloaded"
    exit 0
  fi
  echo "no published snapguard $SNAPGUARD_VERSION for $target; building from source"
fi
cargo install --locked --path "$SNAPGUARD_SOURCE" --root "$HOME/.snapguard" --bin snapguard

#!/usr/bin/env bash
# The action's install step: puts `snapguard` and `run.sh` in ~/.snapguard/bin.
# With MODE=release, the archive at URL is installed only when its SHA-256 is
# SHA256 (the published one, read by resolve.sh); a binary restored from the
# cache is used only when it came from that same archive. With MODE=source,
# the action's own source is built.
set -euo pipefail
bin="$HOME/.snapguard/bin"
mkdir -p "$bin"
cp "$SNAPGUARD_SOURCE/pipeline/github-actions/action/run.sh" "$bin/run.sh"
chmod +x "$bin/run.sh"
echo "$bin" >> "${GITHUB_PATH:-/dev/null}"
if [ "${MODE:?}" = "source" ]; then
  cargo install --locked --path "$SNAPGUARD_SOURCE" --root "$HOME/.snapguard" --bin snapguard
  exit 0
fi
if [ -x "$bin/snapguard" ] && [ "$(cat "$bin/.sha256" 2>/dev/null)" = "${SHA256:?}" ]; then
  echo "snapguard $("$bin/snapguard" --version | cut -d' ' -f2) (cached, archive $SHA256)"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if ! curl -fsSL --retry 3 -o "$tmp/archive.tar.gz" "${URL:?}" 2>"$tmp/curl.err"; then
  echo "::error::snapguard: downloading $URL failed ($(tr '\n' ' ' < "$tmp/curl.err")); its checksum was published a moment ago, so this is most likely the network: retry the job" >&2
  exit 1
fi
actual="$( (command -v sha256sum >/dev/null && sha256sum "$tmp/archive.tar.gz" || shasum -a 256 "$tmp/archive.tar.gz") | cut -d' ' -f1)"
if [ "$actual" != "$SHA256" ]; then
  echo "::error::snapguard: the download's SHA-256 is $actual, the published one $SHA256; not installing it" >&2
  exit 1
fi
tar -xzf "$tmp/archive.tar.gz" -C "$tmp" snapguard
install -m 0755 "$tmp/snapguard" "$bin/snapguard"
echo "$SHA256" > "$bin/.sha256"
echo "snapguard $("$bin/snapguard" --version | cut -d' ' -f2) installed (SHA-256 checked)"

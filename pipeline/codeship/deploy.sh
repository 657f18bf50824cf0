#!/usr/bin/env bash
# Codeship Basic: a custom-script deployment runs each line on its own, so
# the deploy is one script. In the deployment pipeline's custom script:
#
#   bash pipeline/codeship/deploy.sh
#
# Environment (Project Settings → Environment): DATABASE_URL,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, SNAPGUARD_REPOSITORY (owner/name
# where snapguard releases are published) and SNAPGUARD_VERSION (a release
# tag). The release archive is installed only when its SHA-256 matches.
set -euo pipefail
here="$(dirname "$0")"
if ! command -v snapguard >/dev/null 2>&1; then
  export SNAPGUARD_DIR="${SNAPGUARD_DIR:-$HOME/.snapguard/bin}"
  "$here/../install.sh"
  export PATH="$SNAPGUARD_DIR:$PATH"
fi
exec "$here/../shell/deploy.sh" --release "${CI_COMMIT_ID:-}"

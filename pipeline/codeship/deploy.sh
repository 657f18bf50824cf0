#!/usr/bin/env bash
# Codeship Basic: a custom-script deployment runs each line on its own, so
# the deploy is one script. In the deployment pipeline's custom script:
#
#   bash pipeline/codeship/deploy.sh
#
# Environment (Project Settings → Environment): DATABASE_URL,
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, SNAPGUARD_GIT.
set -euo pipefail
if ! command -v snapguard >/dev/null 2>&1; then
  cargo install --locked --git "${SNAPGUARD_GIT:?set SNAPGUARD_GIT to this repository}" snapguard
fi
exec "$(dirname "$0")/../shell/deploy.sh" --release "${CI_COMMIT_ID:-}"

#!/usr/bin/env bash
# The action's run step. Inputs arrive as environment variables, never as
# shell text: INPUT_ARGS is split on whitespace into separate arguments and
# is not evaluated. snapguard itself writes the outputs ($GITHUB_OUTPUT), the
# job summary ($GITHUB_STEP_SUMMARY), masks and log groups.
set -uo pipefail
command="${INPUT_COMMAND:-deploy}"
case "$command" in
  deploy | rehearse | plan | restore) ;;
  *)
    echo "::error::snapguard action: unsupported command \`$command\` (deploy, rehearse, plan, restore)"
    exit 2
    ;;
esac
read -r -a extra <<< "${INPUT_ARGS:-}"
bin="${SNAPGUARD_BIN:-$HOME/.snapguard/bin/snapguard}"
exec "$bin" --config "${INPUT_CONFIG:-snapguard.yml}" "$command" "${extra[@]}"

#!/usr/bin/env bash
# The action's run step. Inputs arrive as environment variables, never as
# shell text, and are not evaluated. INPUT_ARGS holds one argument per line
# (so an argument may contain spaces); a single line is split on whitespace,
# as before. snapguard itself writes the outputs ($GITHUB_OUTPUT), the job
# summary ($GITHUB_STEP_SUMMARY), masks and log groups.
set -uo pipefail
command="${INPUT_COMMAND:-deploy}"
# Every snapguard command; anything else is refused before it reaches a shell.
commands="deploy plan lint rehearse recover maintenance prune snapshot snapshots restore verify migrate init completions man config"
case " $commands " in
  *" $command "*) ;;
  *)
    echo "::error::snapguard action: unsupported command \`$command\` ($commands)" >&2
    exit 2
    ;;
esac
args="${INPUT_ARGS:-}"
extra=()
if [[ "$args" == *$'\n'* ]]; then
  while IFS= read -r line; do
    [ -n "$line" ] && extra+=("$line")
  done <<< "$args"
else
  read -r -a extra <<< "$args"
fi
bin="${SNAPGUARD_BIN:-$HOME/.snapguard/bin/snapguard}"
exec "$bin" --config "${INPUT_CONFIG:-snapguard.yml}" "$command" "${extra[@]}"

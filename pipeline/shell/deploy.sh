#!/usr/bin/env bash
# snapguard deploy for any CI: run it as one step of the deploy job.
#
#   pipeline/shell/deploy.sh [extra snapguard deploy flags]
#
# Set DATABASE_URL (or SNAPGUARD_DATABASE_URL) and the store's credentials
# (AWS_* or an instance role) in the CI's secret settings; the rest lives in
# snapguard.yml. SNAPGUARD_CONFIG picks another config file; SNAPGUARD_BIN
# another binary. The script prints the report, keeps it as
# snapguard-report.json (an artifact worth keeping), and exits with
# snapguard's own code: 0 deployed, 3 refused before any change, 4 failed
# and rolled back, 5 a human is needed (maintenance is still on), 6 another
# deploy is running.
set -uo pipefail

bin="${SNAPGUARD_BIN:-snapguard}"
config="${SNAPGUARD_CONFIG:-snapguard.yml}"
report="${SNAPGUARD_REPORT:-snapguard-report.json}"

if ! command -v "$bin" >/dev/null 2>&1; then
  echo "snapguard is not installed: run pipeline/install.sh (a published release, checksum-verified), or set SNAPGUARD_BIN" >&2
  exit 2
fi

"$bin" --config "$config" deploy --report "$report" "$@"
code=$?
case "$code" in
  0) echo "snapguard: deployed" ;;
  3) echo "snapguard: refused before changing anything (exit 3)" >&2 ;;
  4) echo "snapguard: the deploy failed and was rolled back (exit 4)" >&2 ;;
  5) echo "snapguard: MANUAL ACTION NEEDED, maintenance is still on (exit 5); see the report above" >&2 ;;
  6) echo "snapguard: another deploy holds the lock (exit 6)" >&2 ;;
  *) echo "snapguard: exit $code" >&2 ;;
esac
exit "$code"

#!/bin/bash
# Draw the chain from this pipeline (every pipeline it triggered, recursively) as one
# self-contained HTML page, for store_artifacts as circleback/chain.html. Runs whatever
# the check's result was; a failure to draw is reported and never fails the job.
#
# Environment (set by the orb):
#   PARAM_TOKEN_VAR   the NAME of the variable holding the CircleCI API token
#   PARAM_OUTPUT      where to write the page
#   CIRCLE_PIPELINE_ID  this pipeline (set by CircleCI)
set -euo pipefail

output="${PARAM_OUTPUT:-$HOME/circleback-chain/chain.html}"
case "$output" in
  \~/*) output="$HOME/${output#\~/}" ;;
esac
name="${PARAM_TOKEN_VAR:-CIRCLE_TOKEN}"
name="${name//[[:space:]]/}"
if [ -z "${CIRCLE_PIPELINE_ID:-}" ] || ! command -v circleback >/dev/null 2>&1; then
  echo "circleback: no pipeline id or no circleback here; not drawing the chain"
  exit 0
fi
if ! [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!name:-}" ]; then
  echo "circleback: the token variable '$name' is not set; not drawing the chain" >&2
  exit 0
fi
mkdir -p "$(dirname "$output")"
if CIRCLEBACK_TOKEN="${!name}" circleback trace "$CIRCLE_PIPELINE_ID" --format html >"$output"; then
  echo "circleback: the chain is in the artifacts as circleback/chain.html"
else
  echo "circleback: could not draw the chain; the check's result stands" >&2
  rm -f "$output"
fi
exit 0

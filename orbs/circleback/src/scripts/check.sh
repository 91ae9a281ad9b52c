#!/bin/bash
# Wait until every pipeline recorded in the workspace state file is finished, and fail
# unless all of them succeeded. Writes a JUnit report for store_test_results.
#
# Environment (set by the orb):
#   PARAM_WORKSPACE_DIR     the attached workspace root (state file: circleback/downstream.json)
#   PARAM_TIMEOUT           how long to wait, e.g. 30m (empty: the CLI's default)
#   PARAM_TEST_RESULTS_DIR  the JUnit report goes to circleback/junit.xml under it
#   PARAM_TOKEN_VAR         the NAME of the variable holding the CircleCI API token
#   PARAM_CANCEL_DOWNSTREAM_ON_TIMEOUT  "true": on timeout, cancel what still runs downstream
# Exit status is the CLI's: 0 all succeeded, 1 a downstream pipeline failed,
# 2 bad input, 3 API error, 4 timed out.
# NB: never write two '<' in a row here: CircleCI would read them as a parameter.
set -euo pipefail

die() {
  local code=$1
  shift
  echo "circleback: error: $*" >&2
  exit "$code"
}

strip_space() {
  local value=$1
  value="${value#"${value%%[![:space:]]*}"}"
  printf '%s' "${value%"${value##*[![:space:]]}"}"
}

expand_home() {
  case "$1" in
    \~) printf '%s' "$HOME" ;;
    \~/*) printf '%s' "$HOME/${1#\~/}" ;;
    *) printf '%s' "$1" ;;
  esac
}

# Export CIRCLEBACK_TOKEN from the variable the token parameter names.
load_token() {
  local name
  name="$(strip_space "${PARAM_TOKEN_VAR:-CIRCLE_TOKEN}")"
  [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
    die 2 "the token parameter '$name' is not an environment variable name."
  [ -n "${!name:-}" ] ||
    die 2 "the environment variable $name (the token parameter) is empty or unset. Store a CircleCI personal API token as $name in the project's environment variables or in a context this job uses, or set the token parameter to the name of the variable that holds it."
  export CIRCLEBACK_TOKEN="${!name}"
}

require_cli() {
  command -v circleback >/dev/null 2>&1 ||
    die 2 "circleback is not on PATH; run the circleback/install command before this step."
}

workspace="$(expand_home "$(strip_space "${PARAM_WORKSPACE_DIR:-$HOME/workspace}")")"
results="$(expand_home "$(strip_space "${PARAM_TEST_RESULTS_DIR:-$HOME/test-results}")")"
timeout="$(strip_space "${PARAM_TIMEOUT:-}")"
state_file="$workspace/circleback/downstream.json"
junit="$results/circleback/junit.xml"

[ -f "$state_file" ] ||
  die 2 "no state file at $state_file. Run circleback/trigger (or the trigger_pipeline command) earlier in this workflow with the same workspace_dir, and require it from this job."

args=(status --state-file "$state_file" --junit "$junit")
if [ -n "$timeout" ]; then args+=(--timeout "$timeout"); fi
if [ "$(strip_space "${PARAM_CANCEL_DOWNSTREAM_ON_TIMEOUT:-false}")" = "true" ]; then
  args+=(--cancel-downstream-on-timeout)
fi

load_token
require_cli
mkdir -p "$(dirname "$junit")"
echo "circleback: waiting for the downstream pipelines in $state_file"
printf '+ circleback'
printf ' %q' "${args[@]}"
printf '\n'
circleback "${args[@]}"

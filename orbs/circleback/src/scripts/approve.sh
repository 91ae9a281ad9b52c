#!/bin/bash
# Release the upstream pipeline's hold (approval) job, if this pipeline has an upstream.
#
# Environment (set by the orb):
#   PARAM_UPSTREAM_PIPELINE_ID  the upstream (A) pipeline id; empty means this pipeline was
#                               not triggered through circleback: print one line, exit 0
#   PARAM_ALLOW_PROJECT         upstream project slug patterns, separated by commas or spaces
#   PARAM_JOB_NAME              the hold job's name in the upstream workflow
#   PARAM_WORKFLOW_NAME         optional: only look in upstream workflows of this name
#   PARAM_TOKEN_VAR             the NAME of the variable holding the CircleCI API token
#   PARAM_FAN_IN                "true": the hold is shared by several downstream pipelines;
#                               the CLI releases it only when the others are done too (it
#                               reads CIRCLE_PIPELINE_ID and CIRCLE_JOB, set by CircleCI)
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

# Checked first, before anything else is looked at or run: most pipelines of a
# downstream project are not triggered by circleback, and they must pay nothing.
upstream_id="$(strip_space "${PARAM_UPSTREAM_PIPELINE_ID:-}")"
if [ -z "$upstream_id" ]; then
  echo "circleback: no upstream pipeline id (this pipeline was not triggered by circleback); nothing to approve."
  exit 0
fi

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

job_name="$(strip_space "${PARAM_JOB_NAME:-}")"
workflow_name="$(strip_space "${PARAM_WORKFLOW_NAME:-}")"

# Split on commas and white space; read -a does no pathname expansion, so gh/acme/*
# reaches the CLI as written.
patterns=()
read -r -a patterns < <(printf '%s\n' "${PARAM_ALLOW_PROJECT:-}" | tr ',\n\t\r' '    ') || true
[ "${#patterns[@]}" -gt 0 ] ||
  die 2 "the allow_project parameter is empty; list the upstream project slugs (patterns such as gh/acme/*) whose hold jobs this pipeline may approve."

args=(approve --pipeline-id "$upstream_id")
for pattern in "${patterns[@]}"; do
  args+=(--allow-project "$pattern")
done
if [ -n "$job_name" ]; then args+=(--job-name "$job_name"); fi
if [ -n "$workflow_name" ]; then args+=(--workflow-name "$workflow_name"); fi
if [ "$(strip_space "${PARAM_FAN_IN:-false}")" = "true" ]; then args+=(--fan-in); fi

load_token
require_cli
echo "circleback: approving the hold job of upstream pipeline $upstream_id"
printf '+ circleback'
printf ' %q' "${args[@]}"
printf '\n'
circleback "${args[@]}"

#!/bin/bash
# Release (or cancel) this project's hold jobs whose downstream pipelines finished long
# ago and never called back: a downstream workflow canceled before its callback ran, a
# downstream that errored after creation, a callback job that failed.
#
# Environment (set by the orb):
#   PARAM_PROJECT_SLUG  the upstream project to sweep (usually pipeline.project.slug)
#   PARAM_GRACE         how long a downstream must have been final, e.g. 1h
#   PARAM_JOB_NAME      the hold job's name(s), separated by commas or spaces
#   PARAM_CANCEL        "true" to cancel the held workflow instead of releasing it
#   PARAM_MAX_PIPELINES how many of the newest pipelines to look at
#   PARAM_TOKEN_VAR     the NAME of the variable holding the CircleCI API token
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

load_token() {
  local name
  name="$(strip_space "${PARAM_TOKEN_VAR:-CIRCLE_TOKEN}")"
  [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] ||
    die 2 "the token parameter '$name' is not an environment variable name."
  [ -n "${!name:-}" ] ||
    die 2 "the environment variable $name (the token parameter) is empty or unset. Store a CircleCI personal API token as $name in the project's environment variables or in a context this job uses."
  export CIRCLEBACK_TOKEN="${!name}"
}

slug="$(strip_space "${PARAM_PROJECT_SLUG:-}")"
[ -n "$slug" ] || die 2 "the project_slug parameter is empty; pass the project to sweep, e.g. pipeline.project.slug."

args=(sweep "$slug")
grace="$(strip_space "${PARAM_GRACE:-}")"
if [ -n "$grace" ]; then args+=(--grace "$grace"); fi
max="$(strip_space "${PARAM_MAX_PIPELINES:-}")"
if [ -n "$max" ]; then args+=(--max-pipelines "$max"); fi
names=()
read -r -a names < <(printf '%s\n' "${PARAM_JOB_NAME:-}" | tr ',\n\t\r' '    ') || true
for name in "${names[@]}"; do
  args+=(--job-name "$name")
done
if [ "$(strip_space "${PARAM_CANCEL:-false}")" = "true" ]; then args+=(--cancel); fi

load_token
command -v circleback >/dev/null 2>&1 ||
  die 2 "circleback is not on PATH; run the circleback/install command before this step."
printf '+ circleback'
printf ' %q' "${args[@]}"
printf '\n'
circleback "${args[@]}"

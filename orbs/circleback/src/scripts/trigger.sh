#!/bin/bash
# Trigger a pipeline of another project and record it in the workspace state file.
#
# Environment (set by the orb):
#   PARAM_PROJECT_SLUG          the downstream project, e.g. gh/acme/project-b
#   PARAM_BRANCH, PARAM_TAG     at most one of them; neither means the default branch
#   PARAM_PARAMETERS            pipeline parameters, one KEY=VALUE a line ('#' lines skipped)
#   PARAM_DEFINITION_ID         optional pipeline definition id
#   PARAM_CALLBACK_PARAMETER    the parameter that carries this pipeline's id to B
#   PARAM_UPSTREAM_PIPELINE_ID  this pipeline's id (pipeline.id); the CLI falls back
#                               to $CIRCLE_PIPELINE_ID when it is empty
#   PARAM_TOKEN_VAR             the NAME of the variable holding the CircleCI API token
#   PARAM_WORKSPACE_DIR         the workspace root; the state file goes to circleback/ in it
#   PARAM_MAX_DEPTH             refuse a cycle or a chain deeper than this (0: no check;
#                               empty: the CLI's default)
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

slug="$(strip_space "${PARAM_PROJECT_SLUG:-}")"
branch="$(strip_space "${PARAM_BRANCH:-}")"
tag="$(strip_space "${PARAM_TAG:-}")"
definition_id="$(strip_space "${PARAM_DEFINITION_ID:-}")"
callback="$(strip_space "${PARAM_CALLBACK_PARAMETER:-}")"
upstream_id="$(strip_space "${PARAM_UPSTREAM_PIPELINE_ID:-}")"
workspace="$(expand_home "$(strip_space "${PARAM_WORKSPACE_DIR:-$HOME/workspace}")")"
state_file="$workspace/circleback/downstream.json"
max_depth="$(strip_space "${PARAM_MAX_DEPTH:-}")"

[ -n "$slug" ] ||
  die 2 "the project_slug parameter is empty; set it to the downstream project's slug, e.g. gh/acme/project-b."
if [ -n "$branch" ] && [ -n "$tag" ]; then
  die 2 "set the branch or the tag parameter, not both (branch '$branch', tag '$tag')."
fi
if [ -n "$max_depth" ] && ! [[ "$max_depth" =~ ^[0-9]+$ ]]; then
  die 2 "the max_depth parameter '$max_depth' is not a whole number (0 switches the check off)."
fi

args=(trigger "$slug")
if [ -n "$branch" ]; then args+=(--branch "$branch"); fi
if [ -n "$tag" ]; then args+=(--tag "$tag"); fi

while IFS= read -r line || [ -n "$line" ]; do
  line="$(strip_space "$line")"
  case "$line" in
    "" | "#"*) continue ;;
    =*) die 2 "the parameters line '$line' has no name before '='." ;;
    *=*) args+=(--parameter "$line") ;;
    *) die 2 "the parameters line '$line' is not KEY=VALUE (write one KEY=VALUE a line)." ;;
  esac
done < <(printf '%s\n' "${PARAM_PARAMETERS:-}")

if [ -n "$definition_id" ]; then args+=(--definition-id "$definition_id"); fi
if [ -n "$upstream_id" ]; then args+=(--upstream-pipeline-id "$upstream_id"); fi
if [ -n "$callback" ]; then args+=(--callback-parameter "$callback"); fi
if [ -n "$max_depth" ]; then args+=(--max-depth "$max_depth"); fi
args+=(--state-file "$state_file")

load_token
require_cli
mkdir -p "$(dirname "$state_file")"
echo "circleback: triggering a pipeline of $slug"
printf '+ circleback'
printf ' %q' "${args[@]}"
printf '\n'
circleback "${args[@]}"
echo "circleback: recorded in $state_file"

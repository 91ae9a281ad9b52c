#!/bin/sh
# Release the upstream pipeline's hold (approval) job, if this pipeline has an upstream.
# POSIX sh: runs under bash (also 3.2 and --posix), dash and busybox sh alike.
#
# Environment (set by the orb):
#   PARAM_UPSTREAM_PIPELINE_ID  the upstream (A) pipeline id; empty means this pipeline was
#                               not triggered through circleback: print one line, exit 0.
#                               A pipeline parameter: used as it is, never $VAR-substituted.
#   PARAM_ALLOW_PROJECT         upstream project slug patterns, separated by commas or spaces
#   PARAM_JOB_NAME              the hold job's name in the upstream workflow
#   PARAM_WORKFLOW_NAME         optional: only look in upstream workflows of this name
#   PARAM_TOKEN_VAR             the NAME of the variable holding the CircleCI API token
#   PARAM_FAN_IN                "true": the hold is shared by several downstream pipelines;
#                               the CLI releases it only when the others are done too (it
#                               reads CIRCLE_PIPELINE_ID and CIRCLE_JOB, set by CircleCI)
# NB: never write two '<' in a row here: CircleCI would read them as a parameter.
set +x # never trace: the token is handled below (an inherited set -x, SHELLOPTS or BASH_ENV)
set -eu

# Print an error (control characters but newlines shown as '?': a value from outside in the
# message cannot overwrite a line of the log) and exit with status $1.
die() {
  code=$1
  shift
  printf 'circleback: error: %s\n' "$*" | tr '\001-\011\013-\037\177' '?' >&2
  exit "$code"
}

strip() {
  _s=$1
  _s=${_s#"${_s%%[![:space:]]*}"}
  _s=${_s%"${_s##*[![:space:]]}"}
  printf '%s' "$_s"
}

# Shell-quote $1 for display (what `printf %q` does in bash, in POSIX sh).
quote() {
  case $1 in
    "" | *[!A-Za-z0-9_./=:,@%+-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
  esac
}

# $1 with $NAME and ${NAME} replaced from the environment, as `circleci env subst` does; awk
# stands in where the CircleCI CLI is absent (another CI, the local executor).
env_subst() {
  if command -v circleci >/dev/null 2>&1 &&
    _out=$(printf '%s' "$1" | circleci env subst 2>/dev/null); then
    printf '%s' "$_out"
    return 0
  fi
  printf '%s' "$1" | awk '{
    s = $0; out = ""
    while (match(s, /[$]([{][A-Za-z_][A-Za-z0-9_]*[}]|[A-Za-z_][A-Za-z0-9_]*)/)) {
      name = substr(s, RSTART + 1, RLENGTH - 1)
      if (substr(name, 1, 1) == "{") name = substr(name, 2, length(name) - 2)
      out = out substr(s, 1, RSTART - 1) ENVIRON[name]
      s = substr(s, RSTART + RLENGTH)
    }
    printf "%s%s%s", (NR > 1 ? "\n" : ""), out, s
  }'
}

# True when $1 holds the value of a variable the API token may be read from (the token
# parameter's, or one circleback reads). Values under 4 characters are not looked for, as
# in CircleCI's own masking of secrets.
holds_token() {
  for _n in "${PARAM_TOKEN_VAR:-CIRCLE_TOKEN}" CIRCLEBACK_TOKEN CIRCLE_TOKEN CIRCLECI_API_KEY; do
    _n=$(strip "$_n")
    case $_n in "" | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
    eval "_t=\${$_n-}"
    _t=$(strip "$_t")
    if [ "${#_t}" -ge 4 ]; then
      case $1 in *"$_t"*) _t="" && return 0 ;; esac
    fi
  done
  _t=""
  return 1
}

# The parameter named $1 as the step received it ($2), surrounding space removed, $VARs
# substituted; refused when substitution brought in the API token, which would then be
# printed and sent (a branch named '$CIRCLE_TOKEN' reaches a branch parameter set from
# pipeline.git.branch as that very text).
param() {
  _v=$(strip "$(env_subst "$2")")
  if holds_token "$_v" && ! holds_token "$2"; then
    die 2 "the $1 parameter ('$(strip "$2")') names a variable that holds the API token: refusing to substitute, print or send it. Pass branch and tag names as \$CIRCLE_BRANCH or \$CIRCLE_TAG (substituted once), not as pipeline.git.branch or pipeline.git.tag (pasted in as text, so that a branch named '\$CIRCLE_TOKEN' would read the token)."
  fi
  printf '%s' "$_v"
}

# Export CIRCLEBACK_TOKEN from the variable the token parameter names (never traced).
load_token() {
  _name=$(strip "${PARAM_TOKEN_VAR:-CIRCLE_TOKEN}")
  case $_name in
    "" | [0-9]* | *[!A-Za-z0-9_]*) die 2 "the token parameter '$_name' is not an environment variable name." ;;
  esac
  eval "_token=\${$_name-}"
  [ -n "$_token" ] ||
    die 2 "the environment variable $_name (the token parameter) is empty or unset. Store a CircleCI personal API token as $_name in the project's environment variables or in a context this job uses, or set the token parameter to the name of the variable that holds it."
  CIRCLEBACK_TOKEN=$_token
  export CIRCLEBACK_TOKEN
  unset _token
}

# The circleback that circleback/install chose comes first (sh does not read BASH_ENV).
require_cli() {
  if [ -x "$HOME/.circleback/bin/circleback" ]; then
    PATH="$HOME/.circleback/bin:$PATH"
  fi
  command -v circleback >/dev/null 2>&1 ||
    die 2 "circleback is not on PATH; run the circleback/install command before this step."
}

# $1 for display, control characters (newline included) shown as '?': a value from outside
# (a pipeline parameter, a branch name) cannot forge, hide or overwrite a line of the log.
shown() {
  printf '%s' "$1" | tr '\001-\037\177' '?'
}

# Print the command line (quoted, as a shell would read it), then run it.
run_cli() {
  _line="+ circleback"
  for _arg in "$@"; do
    _line="$_line $(quote "$(shown "$_arg")")"
  done
  printf '%s\n' "$_line"
  circleback "$@"
}

# A path parameter, ~ expanded; refused when empty or holding control characters. Never
# $VAR-substituted: CircleCI's own steps (attach_workspace, persist_to_workspace,
# store_test_results) read the same parameter as written, so a $VARIABLE is refused.
path_param() {
  _p=$(strip "$2")
  case $_p in
    "") die 2 "the $1 parameter is empty; give a directory, e.g. ~/workspace." ;;
    *[[:cntrl:]]*) die 2 "the $1 parameter holds a control character; give a plain directory." ;;
    *\$*) die 2 "the $1 parameter ('$_p') holds a \$VARIABLE, which CircleCI's workspace and test-result steps never substitute (they would use a directory named '$_p'); give the path itself (~ for the home directory is fine)." ;;
    \~) _p=$HOME ;;
    \~/*) _p="$HOME/${_p#\~/}" ;;
  esac
  printf '%s' "$_p"
}

# Checked first, before anything else is looked at or run: most pipelines of a
# downstream project are not triggered by circleback, and they must pay nothing.
upstream_id=$(strip "${PARAM_UPSTREAM_PIPELINE_ID:-}")
if [ -z "$upstream_id" ]; then
  echo "circleback: no upstream pipeline id (this pipeline was not triggered by circleback); nothing to approve."
  exit 0
fi

job_name=$(param job_name "${PARAM_JOB_NAME:-}")
workflow_name=$(param workflow_name "${PARAM_WORKFLOW_NAME:-}")
allow=$(param allow_project "${PARAM_ALLOW_PROJECT:-}")

set -- approve --pipeline-id "$upstream_id"
# Split on commas and white space, with pathname expansion off: gh/acme/* reaches the CLI
# as written.
patterns=0
set -f
for pattern in $(printf '%s' "$allow" | tr ',' ' '); do
  set -- "$@" --allow-project "$pattern"
  patterns=$((patterns + 1))
done
set +f
[ "$patterns" -gt 0 ] ||
  die 2 "the allow_project parameter is empty; list the upstream project slugs (patterns such as gh/acme/*) whose hold jobs this pipeline may approve."
if [ -n "$job_name" ]; then set -- "$@" --job-name "$job_name"; fi
if [ -n "$workflow_name" ]; then set -- "$@" --workflow-name "$workflow_name"; fi
if [ "$(strip "${PARAM_FAN_IN:-false}")" = "true" ]; then set -- "$@" --fan-in; fi

load_token
require_cli
echo "circleback: approving the hold job of upstream pipeline $(shown "$upstream_id")"
run_cli "$@"

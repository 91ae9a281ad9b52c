#!/bin/sh
# Release (or cancel) this project's hold jobs whose downstream pipelines finished long
# ago and never called back: a downstream workflow canceled before its callback ran, a
# downstream that errored after creation, a callback job that failed.
# POSIX sh: runs under bash (also 3.2 and --posix), dash and busybox sh alike.
#
# Environment (set by the orb):
#   PARAM_PROJECT_SLUG  the upstream project to sweep (usually pipeline.project.slug)
#   PARAM_GRACE         how long a downstream must have been final, e.g. 1h
#   PARAM_JOB_NAME      the hold job's name(s), separated by commas or spaces
#   PARAM_CANCEL        "true" to cancel the held workflow instead of releasing it
#   PARAM_MAX_PIPELINES how many of the newest pipelines to look at
#   PARAM_TOKEN_VAR     the NAME of the variable holding the CircleCI API token
# NB: never write two '<' in a row here: CircleCI would read them as a parameter.
set +x # never trace: the token is handled below (an inherited set -x, SHELLOPTS or BASH_ENV)
set -eu

die() {
  code=$1
  shift
  echo "circleback: error: $*" >&2
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

# A parameter as the step received it, surrounding space removed, $VARs substituted.
param() {
  strip "$(env_subst "$1")"
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

# Print the command line (quoted, as a shell would read it), then run it.
run_cli() {
  _line="+ circleback"
  for _arg in "$@"; do
    _line="$_line $(quote "$_arg")"
  done
  printf '%s\n' "$_line"
  circleback "$@"
}

# A path parameter, ~ expanded; refused when empty or holding control characters.
path_param() {
  _p=$(param "$2")
  case $_p in
    "") die 2 "the $1 parameter is empty; give a directory, e.g. ~/workspace." ;;
    *[[:cntrl:]]*) die 2 "the $1 parameter holds a control character; give a plain directory." ;;
    \~) _p=$HOME ;;
    \~/*) _p="$HOME/${_p#\~/}" ;;
  esac
  printf '%s' "$_p"
}

slug=$(param "${PARAM_PROJECT_SLUG:-}")
[ -n "$slug" ] || die 2 "the project_slug parameter is empty; pass the project to sweep, e.g. pipeline.project.slug."
grace=$(param "${PARAM_GRACE:-}")
max=$(strip "${PARAM_MAX_PIPELINES:-}")
names=$(param "${PARAM_JOB_NAME:-}")

set -- sweep "$slug"
if [ -n "$grace" ]; then set -- "$@" --grace "$grace"; fi
if [ -n "$max" ]; then set -- "$@" --max-pipelines "$max"; fi
set -f
for name in $(printf '%s' "$names" | tr ',' ' '); do
  set -- "$@" --job-name "$name"
done
set +f
if [ "$(strip "${PARAM_CANCEL:-false}")" = "true" ]; then set -- "$@" --cancel; fi

load_token
require_cli
run_cli "$@"

#!/bin/sh
# Draw the chain from this pipeline (every pipeline it triggered, recursively) as one
# self-contained HTML page, for store_artifacts as circleback/chain.html. Runs whatever the
# check's result was; failing to draw is reported and never fails the job.
# POSIX sh: runs under bash (also 3.2 and --posix), dash and busybox sh alike.
#
# Environment (set by the orb):
#   PARAM_TOKEN_VAR     the NAME of the variable holding the CircleCI API token
#   PARAM_OUTPUT        where to write the page (~ expanded)
#   CIRCLE_PIPELINE_ID  this pipeline (set by CircleCI)
# NB: never write two '<' in a row here: CircleCI would read them as a parameter.
set +x # never trace: the token is handled below (an inherited set -x, SHELLOPTS or BASH_ENV)
set -eu

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

output=$(strip "${PARAM_OUTPUT:-}")
case $output in
  "") output="$HOME/circleback-chain/chain.html" ;;
  \~/*) output="$HOME/${output#\~/}" ;;
esac
if [ -x "$HOME/.circleback/bin/circleback" ]; then
  PATH="$HOME/.circleback/bin:$PATH"
fi
pipeline_id=$(strip "${CIRCLE_PIPELINE_ID:-}")
if [ -z "$pipeline_id" ] || ! command -v circleback >/dev/null 2>&1; then
  echo "circleback: no pipeline id or no circleback here; not drawing the chain"
  exit 0
fi
# Without a token there is nothing to draw, and the check's own result must stand.
if ! (load_token) >/dev/null 2>&1; then
  echo "circleback: the token variable ${PARAM_TOKEN_VAR:-CIRCLE_TOKEN} is not set; not drawing the chain" >&2
  exit 0
fi
load_token
mkdir -p "$(dirname "$output")"
if circleback trace "$pipeline_id" --format html >"$output"; then
  echo "circleback: the chain is in the artifacts as circleback/chain.html"
else
  echo "circleback: could not draw the chain; the check's result stands" >&2
  rm -f "$output"
fi

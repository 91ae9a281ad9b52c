#!/bin/bash
# Install a pinned circleback CLI and put it on PATH for the steps after this one.
#
# Environment (set by the orb):
#   PARAM_VERSION       the circleback release to install, e.g. 0.1.0
#   PARAM_PACKAGE       optional pip requirement to install it from (git or wheel URL)
#   PARAM_INSTALL_DIR   root of the cached installs (one sub-directory per version)
#   PARAM_SKIP_WITHOUT_UPSTREAM=true and PARAM_UPSTREAM_PIPELINE_ID
#                       set by approve_upstream: with no upstream id, do nothing at all
# Honoured from the job's environment:
#   CIRCLEBACK_SKIP_INSTALL=1   use the circleback already on PATH, whatever its version
#
# Order of preference: a circleback on PATH that reports the pinned version; a cached
# install; uv; python3 -m venv; pipx; apt-get install python3 then python3 -m venv.
# NB: this file is included into the orb, where CircleCI reads two '<' in a row as the
# start of a parameter: never write one (no here-documents or here-strings).
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

if [ "${PARAM_SKIP_WITHOUT_UPSTREAM:-false}" = "true" ] &&
  [ -z "$(strip_space "${PARAM_UPSTREAM_PIPELINE_ID:-}")" ]; then
  echo "circleback: no upstream pipeline id; skipping the install."
  exit 0
fi

version="$(strip_space "${PARAM_VERSION:-}")"
[ -n "$version" ] || die 2 "the version parameter is empty; set it to a circleback release such as 0.1.0."

install_root="${PARAM_INSTALL_DIR:-$HOME/.cache/circleback}"
case "$install_root" in
  \~) install_root="$HOME" ;;
  \~/*) install_root="$HOME/${install_root#\~/}" ;;
esac
prefix="$install_root/$version"
bin_dir="$prefix/bin"
spec="$(strip_space "${PARAM_PACKAGE:-}")"
[ -n "$spec" ] || spec="circleback==$version"

# True when "$1 --version" prints "circleback <version>" on its first line.
reports_version() {
  local out
  out="$("$1" --version 2>/dev/null)" || return 1
  out="${out%%$'\n'*}"
  case "$out" in
    "circleback $version" | "circleback $version "*) return 0 ;;
  esac
  return 1
}

# Prepend $1 to PATH here and, through $BASH_ENV, in every later step of the job.
add_to_path() {
  export PATH="$1:$PATH"
  if [ -n "${BASH_ENV:-}" ]; then
    printf "export PATH=%q:\"\$PATH\"\n" "$1" >>"$BASH_ENV"
  fi
}

as_root() {
  if [ "$(id -u)" = "0" ]; then
    "$@"
  else
    sudo "$@"
  fi
}

python_is_usable() {
  python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}

link_cli() {
  ln -sf "$prefix/venv/bin/circleback" "$bin_dir/circleback"
}

install_with_uv() {
  command -v uv >/dev/null 2>&1 || return 1
  echo "circleback: installing $spec with uv into $prefix"
  uv venv --quiet --python ">=3.10" "$prefix/venv" || return 1
  uv pip install --quiet --python "$prefix/venv/bin/python" "$spec" || return 1
  link_cli
}

install_with_venv() {
  command -v python3 >/dev/null 2>&1 || return 1
  if ! python_is_usable; then
    echo "circleback: $(python3 --version 2>&1) is older than 3.10 or lacks the venv module." >&2
    return 1
  fi
  echo "circleback: installing $spec with python3 -m venv into $prefix"
  python3 -m venv "$prefix/venv" || return 1
  "$prefix/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "$spec" || return 1
  link_cli
}

install_with_pipx() {
  command -v pipx >/dev/null 2>&1 || return 1
  echo "circleback: installing $spec with pipx into $prefix"
  PIPX_HOME="$prefix/pipx" PIPX_BIN_DIR="$bin_dir" pipx install "$spec" || return 1
}

install_python_with_apt() {
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$(id -u)" != "0" ] && ! command -v sudo >/dev/null 2>&1; then
    return 1
  fi
  echo "circleback: no usable python3; installing python3 and python3-venv with apt-get"
  as_root apt-get update -qq || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv \
    >/dev/null || return 1
}

if [ "${CIRCLEBACK_SKIP_INSTALL:-}" = "1" ]; then
  command -v circleback >/dev/null 2>&1 ||
    die 2 "CIRCLEBACK_SKIP_INSTALL=1 but there is no circleback on PATH; install it in the image or unset CIRCLEBACK_SKIP_INSTALL."
  echo "circleback: CIRCLEBACK_SKIP_INSTALL=1; using $(command -v circleback) as it is."
  exit 0
fi

if command -v circleback >/dev/null 2>&1 && reports_version circleback; then
  echo "circleback: circleback $version is already on PATH ($(command -v circleback)); not installing."
  exit 0
fi

if [ -x "$bin_dir/circleback" ] && reports_version "$bin_dir/circleback"; then
  add_to_path "$bin_dir"
  echo "circleback: using the cached circleback $version in $prefix."
  exit 0
fi

# Nothing usable: start clean (a cache restored into another image may hold a broken venv).
rm -rf "$prefix"
mkdir -p "$bin_dir"
if ! install_with_uv && ! install_with_venv && ! install_with_pipx; then
  if install_python_with_apt; then
    install_with_venv ||
      die 2 "python3 was installed with apt-get but circleback $version could not be installed with it (see above)."
  else
    die 2 "could not install circleback $version: no uv, no python3 >= 3.10 with venv, no pipx, and no apt-get to install python3. Use an image with Python 3.10+ (such as the orb's default executor), or put circleback in the image and set CIRCLEBACK_SKIP_INSTALL=1."
  fi
fi

reports_version "$bin_dir/circleback" ||
  die 2 "circleback was installed into $prefix but '$bin_dir/circleback --version' does not report $version."
add_to_path "$bin_dir"
echo "circleback: installed circleback $version into $prefix."

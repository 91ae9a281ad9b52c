#!/bin/sh
# Write what a circleback install depends on to the file the install's cache key checksums:
# the orb's pins (and so the version), the version and package asked for, the OS and its
# release, the CPU architecture and the Python a venv would be built on. CircleCI caches
# cannot be overwritten, so a key that ignored any of these would restore an install made
# for another image on every job, and never save a working one.
#
# Environment (set by the orb):
#   PARAM_PINS, PARAM_VERSION, PARAM_PACKAGE, PARAM_INSTALL_DIR  as for install.sh
#   PARAM_KEY_FILE      where to write (the path the cache steps' checksum reads)
# NB: never write two '<' in a row here: CircleCI would read them as a parameter.
set +x
set -eu

strip() {
  _s=$1
  _s=${_s#"${_s%%[![:space:]]*}"}
  _s=${_s%"${_s##*[![:space:]]}"}
  printf '%s' "$_s"
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

key_file=${PARAM_KEY_FILE:-/tmp/circleback-cache-key}
os=$(uname -s 2>/dev/null || echo unknown)
release=""
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091 # the image's own file
  release=$(. /etc/os-release && printf '%s %s' "${ID:-}" "${VERSION_ID:-}")
elif command -v sw_vers >/dev/null 2>&1; then
  release="macOS $(sw_vers -productVersion 2>/dev/null || echo '?')"
fi
python=none
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1; then
    python=$("$candidate" -c 'import platform, sys; print(platform.python_version(), sys.base_prefix)' 2>/dev/null || echo broken)
    break
  fi
done
{
  printf 'os: %s %s\n' "$os" "$release"
  printf 'arch: %s\n' "$(uname -m 2>/dev/null || echo unknown)"
  printf 'python: %s\n' "$python"
  printf 'version: %s\n' "${PARAM_VERSION:-}"
  # What the install will install: the package as substituted (not printed below, as a
  # variable may hold a credential in a URL).
  printf 'package: %s\n' "$(strip "$(env_subst "${PARAM_PACKAGE:-}")")"
  printf 'install_dir: %s\n' "${PARAM_INSTALL_DIR:-}"
  printf 'pins:\n%s\n' "${PARAM_PINS:-}"
} >"$key_file"
echo "circleback: the install's cache key covers:"
sed -n '1,4p' "$key_file"
printf 'package: %s\n' "${PARAM_PACKAGE:-}"
sed -n '6p' "$key_file"

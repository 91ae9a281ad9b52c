#!/bin/sh
# Install the pinned circleback CLI and put it on PATH for the steps after this one.
# POSIX sh: runs under bash (also 3.2 and --posix), dash and busybox sh alike.
#
# Environment (set by the orb):
#   PARAM_PINS          the orb's pins file (scripts/pins.txt): the pinned circleback version,
#                       hash-pinned requirements once released, and a pinned pip wheel
#   PARAM_VERSION       optional: the version to require; empty means the pinned one
#   PARAM_PACKAGE       optional pip requirement to install instead (a wheel or git URL)
#   PARAM_INSTALL_DIR   root of the cached installs (one sub-directory per version)
#   PARAM_SKIP_WITHOUT_UPSTREAM=true and PARAM_UPSTREAM_PIPELINE_ID
#                       set by approve_upstream: with no upstream id, do nothing at all
# Honoured from the job's environment:
#   CIRCLEBACK_SKIP_INSTALL=1   use the circleback already on PATH, whatever its version
#
# Order: a circleback on PATH that reports the version; a cached install; uv; a venv made
# without pip and filled by the image's own pip; python3 -m venv (pip from ensurepip); a venv
# filled by the pinned pip wheel when the image's Python has neither pip nor ensurepip; pip
# --target with that wheel when Python has no venv module; as a last resort python3 from
# apt-get or apk. The installed `circleback --version` is checked.
# NB: this file is included into the orb, where CircleCI reads two '<' in a row as the
# start of a parameter: never write one (no here-documents).
set +x # never trace: a traced line may hold a secret (an inherited set -x or SHELLOPTS)
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

if [ "${PARAM_SKIP_WITHOUT_UPSTREAM:-false}" = "true" ] &&
  [ -z "$(strip "${PARAM_UPSTREAM_PIPELINE_ID:-}")" ]; then
  echo "circleback: no upstream pipeline id; skipping the install."
  exit 0
fi

# -- what to install ----------------------------------------------------------------------
pins=${PARAM_PINS:-}
pinned=""
hashed=false
bootstrap_url=""
bootstrap_sha=""
old_ifs=$IFS
IFS='
'
set -f
for line in $pins; do
  line=$(strip "$line")
  case $line in
    circleback==*) pinned=$(strip "${line#circleback==}") && pinned=${pinned%%[ \\;]*} ;;
    "# bootstrap-pip: "*)
      line=${line#"# bootstrap-pip: "}
      bootstrap_url=${line%% *}
      bootstrap_sha=${line##* sha256=}
      ;;
  esac
  case $line in
    "#"*) ;;
    *--hash=sha256:*) hashed=true ;;
  esac
done
set +f
IFS=$old_ifs

version=$(strip "${PARAM_VERSION:-}")
[ -n "$version" ] || version=$pinned
[ -n "$version" ] ||
  die 2 "no circleback version: the version parameter is empty and the orb's pins name none. Set version to a circleback release such as 0.1.0."
# The version names a directory: nothing but a version's characters, so that it cannot
# climb out of install_dir (../x) or name an absolute path.
case $version in
  *[!A-Za-z0-9.+!_-]* | .* | *..*)
    die 2 "the version parameter '$version' is not a version number (such as 0.1.0); it may hold only letters, digits and . + ! _ -."
    ;;
esac

package=$(param package "${PARAM_PACKAGE:-}")
case $package in
  *"
"*) die 2 "the package parameter holds more than one line; give one pip requirement (a wheel URL, a git URL, or name==version)." ;;
esac
if [ -n "$package" ]; then
  mode=package
elif [ -z "$pinned" ]; then
  die 2 "the orb's pins (PARAM_PINS) name no circleback release, so there is nothing to install by version; set the package parameter to where circleback $version comes from."
elif [ "$version" != "$pinned" ]; then
  die 2 "this orb release pins circleback $pinned (hash-checked), not $version. To install $version, set the package parameter to where it comes from (e.g. circleback==$version, a wheel URL with #sha256=..., or a git URL); it is then not hash-checked by the orb."
elif [ "$hashed" = true ]; then
  mode=hashed
else
  mode=unreleased
fi

install_root=$(strip "${PARAM_INSTALL_DIR:-}")
[ -n "$install_root" ] || install_root="$HOME/.cache/circleback"
case $install_root in
  \~) install_root=$HOME ;;
  \~/*) install_root="$HOME/${install_root#\~/}" ;;
esac
case $install_root in
  *[[:cntrl:]]*) die 2 "the install_dir parameter holds a control character; give a plain directory such as ~/.cache/circleback." ;;
  / | //) die 2 "the install_dir parameter is '/'; give a directory of its own, such as ~/.cache/circleback." ;;
  *\$*) die 2 "the install_dir parameter ('$install_root') holds a \$VARIABLE, which save_cache never substitutes (it would cache a directory named '$install_root'); give the path itself (~ for the home directory is fine)." ;;
esac
# Relative to the working directory, as save_cache reads it; made absolute, since the
# links below and the PATH entry would otherwise point elsewhere from another directory.
case $install_root in
  /*) ;;
  *) install_root="$PWD/$install_root" ;;
esac
prefix="$install_root/$version"
bin_dir="$prefix/bin"
marker="$prefix/.circleback-install"
# A fixed place the orb's other steps look first: BASH_ENV (how PATH reaches later steps)
# is not read by sh, the shell of images without bash (Alpine).
link_dir="$HOME/.circleback/bin"

# True when "$1 --version" prints "circleback <version>" on its first line.
reports_version() {
  _v=$("$1" --version 2>/dev/null) || return 1
  _v=${_v%%"
"*}
  case $_v in
    "circleback $version" | "circleback $version "*) return 0 ;;
  esac
  return 1
}

# Make $1 (a circleback executable) the one the orb's later steps run: they look at the
# fixed link first.
link_cli() {
  mkdir -p "$link_dir"
  ln -sf "$1" "$link_dir/circleback"
}

# Prepend $1 to PATH in every later bash step of the job, through $BASH_ENV. Without bash
# (Alpine), CircleCI runs steps in sh, which never reads it: say where circleback is.
add_to_path() {
  if [ -n "${BASH_ENV:-}" ]; then
    # shellcheck disable=SC2016 # $PATH is for the later step to expand
    printf 'export PATH=%s:"$PATH"\n' "$(quote "$1")" >>"$BASH_ENV"
  fi
  if ! command -v bash >/dev/null 2>&1; then
    echo "circleback: this image has no bash, so later steps never read \$BASH_ENV: in a step of your own, put $link_dir on PATH first (PATH=\"\$HOME/.circleback/bin:\$PATH\")."
  fi
}

if [ "${CIRCLEBACK_SKIP_INSTALL:-}" = "1" ]; then
  found=$(command -v circleback 2>/dev/null) ||
    die 2 "CIRCLEBACK_SKIP_INSTALL=1 but there is no circleback on PATH; install it in the image or unset CIRCLEBACK_SKIP_INSTALL."
  link_cli "$found"
  echo "circleback: CIRCLEBACK_SKIP_INSTALL=1; using $found as it is."
  exit 0
fi

if found=$(command -v circleback 2>/dev/null) && reports_version "$found"; then
  link_cli "$found"
  echo "circleback: circleback $version is already on PATH ($found); not installing."
  exit 0
fi

if [ -x "$bin_dir/circleback" ] && reports_version "$bin_dir/circleback"; then
  link_cli "$bin_dir/circleback"
  add_to_path "$bin_dir"
  echo "circleback: using the cached circleback $version in $prefix."
  exit 0
fi

if [ "$mode" = unreleased ]; then
  die 2 "circleback $version is not released on PyPI yet: this orb's pins carry no hashes, and installing 'circleback' from PyPI by name would install whatever someone published under that name. Set the package parameter (a wheel URL ending in #sha256=<digest>, or git+https://...@<tag>), or put circleback $version in the image and set CIRCLEBACK_SKIP_INSTALL=1."
fi

# -- installing -------------------------------------------------------------------------
# A restored cache from another image may hold a broken install: start clean, but only
# ever delete a directory this script made (it carries the marker).
if [ -e "$prefix" ]; then
  [ -f "$marker" ] ||
    die 2 "$prefix exists and is not a circleback install; it is left alone. Set install_dir to a directory of its own."
  rm -rf "$prefix"
fi
mkdir -p "$bin_dir"
: >"$marker"
requirements="$prefix/requirements.txt"
printf '%s\n' "$pins" >"$requirements"
if [ "$mode" = hashed ]; then
  echo "circleback: installing circleback $version, every file checked against the orb's pinned hashes"
  set -- --require-hashes -r "$requirements"
else
  # As written: a variable in it may hold a credential (a private index's password).
  echo "circleback: installing $(strip "${PARAM_PACKAGE:-}") (the package parameter: not hash-checked by the orb)"
  set -- "$package"
fi

reasons=""
why() { reasons="$reasons
  - $*"; }

# The first python3 (or python3.X) that is 3.10 or newer.
python=""
for candidate in python3 python3.13 python3.12 python3.11 python3.10 python; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
    python=$(command -v "$candidate")
    break
  fi
done
find_python_reason() {
  if command -v python3 >/dev/null 2>&1; then
    why "python3: $(python3 --version 2>&1) is older than 3.10"
  else
    why "python3: not found"
  fi
}

link_venv_cli() {
  ln -sf "$prefix/venv/bin/circleback" "$bin_dir/circleback"
}

# Images may set PYTHONDONTWRITEBYTECODE: compile at install so that every start is fast.
compile_env() {
  unset PYTHONDONTWRITEBYTECODE
}

install_with_uv() {
  command -v uv >/dev/null 2>&1 || { why "uv: not on PATH"; return 1; }
  echo "circleback: using uv ($(uv --version 2>/dev/null || echo '?'))"
  if [ -n "$python" ]; then
    uv venv --quiet --python "$python" "$prefix/venv" || { why "uv: uv venv failed"; return 1; }
  else
    uv venv --quiet --python ">=3.10" "$prefix/venv" || { why "uv: found no Python 3.10+"; return 1; }
  fi
  (compile_env && uv pip install --quiet --compile-bytecode --python "$prefix/venv/bin/python" "$@") ||
    { why "uv pip install failed (see above)"; return 2; }
  link_venv_cli
}

# The image's own pip (cimg/python has one) installs into a venv made without pip: that
# skips ensurepip, which takes seconds on every cache miss. pip 22.3 added --python.
install_with_system_pip() {
  [ -n "$python" ] || return 1
  "$python" -c 'import sys, pip; sys.exit(tuple(int(p) for p in pip.__version__.split(".")[:2]) < (22, 3))' \
    >/dev/null 2>&1 || { why "$python: no pip 22.3 or newer of its own"; return 1; }
  "$python" -c 'import venv' >/dev/null 2>&1 || { why "$python: no venv module"; return 1; }
  echo "circleback: using $python -m venv --without-pip and $python -m pip"
  "$python" -m venv --without-pip "$prefix/venv" || { why "$python -m venv --without-pip failed"; return 1; }
  (compile_env && "$python" -m pip --python "$prefix/venv/bin/python" install --quiet --compile \
    --disable-pip-version-check --no-input "$@") ||
    { why "pip install failed (see above)"; return 2; }
  link_venv_cli
}

install_with_venv() {
  [ -n "$python" ] || return 1
  "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
    { why "$python: no venv or ensurepip module (Debian's python3-venv is not installed)"; return 1; }
  echo "circleback: using $python -m venv"
  "$python" -m venv "$prefix/venv" || { why "$python -m venv failed"; return 1; }
  (compile_env && "$prefix/venv/bin/python" -m pip install --quiet --compile \
    --disable-pip-version-check --no-input "$@") ||
    { why "pip install failed (see above)"; return 2; }
  link_venv_cli
}

# The pinned pip wheel, downloaded with Python itself and checked against its sha256.
# 1: the pins name no wheel; 2: the download failed or did not match.
fetch_bootstrap_pip() {
  [ -n "$bootstrap_url" ] && [ -n "$bootstrap_sha" ] ||
    { why "the orb's pins name no bootstrap pip wheel"; return 1; }
  wheel="$prefix/${bootstrap_url##*/}"
  "$python" -c 'import hashlib, sys, urllib.request
url, digest, dest = sys.argv[1:4]
data = urllib.request.urlopen(url, timeout=60).read()
if hashlib.sha256(data).hexdigest() != digest:
    sys.exit("circleback: the pip wheel at %s does not match its pinned sha256" % url)
with open(dest, "wb") as out:
    out.write(data)' "$bootstrap_url" "$bootstrap_sha" "$wheel" ||
    { why "could not download the pinned pip wheel ($bootstrap_url), or it did not match its sha256"; return 2; }
}

install_with_bootstrap_pip() {
  [ -n "$python" ] || return 1
  # A failed download is the network's fault (2), not the image's: no other way is tried.
  fetch_bootstrap_pip || return
  if "$python" -c 'import venv' >/dev/null 2>&1; then
    echo "circleback: using $python -m venv --without-pip and the pinned pip wheel"
    "$python" -m venv --without-pip "$prefix/venv" || { why "$python -m venv --without-pip failed"; return 1; }
    (compile_env && "$prefix/venv/bin/python" "$wheel/pip" install --quiet --compile \
      --disable-pip-version-check --no-input "$@") ||
      { why "pip install (from the pinned pip wheel) failed (see above)"; return 2; }
    link_venv_cli
    return 0
  fi
  echo "circleback: $python has no venv module; using pip --target with the pinned pip wheel"
  (compile_env && "$python" "$wheel/pip" install --quiet --compile --disable-pip-version-check \
    --no-input --root-user-action=ignore --target "$prefix/lib" "$@") ||
    { why "pip install --target (from the pinned pip wheel) failed (see above)"; return 2; }
  # shellcheck disable=SC2016 # the wrapper expands these when it runs
  printf '#!/bin/sh\nPYTHONPATH=%s${PYTHONPATH:+:$PYTHONPATH} exec %s -m circleback "$@"\n' \
    "$(quote "$prefix/lib")" "$(quote "$python")" >"$bin_dir/circleback"
  chmod +x "$bin_dir/circleback"
}

as_root() {
  if [ "$(id -u)" = "0" ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    return 1
  fi
}

install_python_with_package_manager() {
  if [ "$(id -u)" != "0" ] && ! command -v sudo >/dev/null 2>&1; then
    why "apt-get/apk: not root and no sudo"
    return 1
  fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "circleback: no usable Python; installing python3 and python3-venv with apt-get"
    if ! as_root apt-get update -qq >/dev/null ||
      ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv \
        >/dev/null; then
      why "apt-get install python3 python3-venv failed"
      return 1
    fi
  elif command -v apk >/dev/null 2>&1; then
    echo "circleback: no usable Python; installing python3 with apk"
    as_root apk add --no-cache -q python3 >/dev/null || { why "apk add python3 failed"; return 1; }
  else
    why "apt-get/apk: neither found, so no Python can be installed"
    return 1
  fi
  python=$(command -v python3 2>/dev/null) || return 1
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1 ||
    { why "the package manager's $("$python" --version 2>&1) is older than 3.10"; python=""; return 1; }
}

# 0: installed; 1: no installer could run here; 2: one ran and failed (no point in another:
# the package, its hashes or the network is at fault, not the installer).
try_installers() {
  for installer in install_with_uv install_with_system_pip install_with_venv install_with_bootstrap_pip; do
    _rc=0
    "$installer" "$@" || _rc=$?
    case $_rc in
      0) return 0 ;;
      1) ;;
      *) return 2 ;;
    esac
  done
  return 1
}

[ -n "$python" ] || find_python_reason
outcome=0
try_installers "$@" || outcome=$?
if [ "$outcome" = 1 ] && [ -z "$python" ] && install_python_with_package_manager; then
  outcome=0
  try_installers "$@" || outcome=$?
fi
if [ "$outcome" = 2 ]; then
  rm -rf "$prefix"
  die 3 "could not install circleback $version:$reasons
The installer's own message is above. 'THESE PACKAGES DO NOT MATCH THE HASHES' means a downloaded file is not the one released: do not work around it; retry, and report it if it persists. A network error: retry the job."
elif [ "$outcome" != 0 ]; then
  rm -rf "$prefix"
  die 2 "could not install circleback $version. Tried:$reasons
Use an image with Python 3.10 or newer (such as the orb's default executor, cimg/python), or with uv; or put circleback $version in the image and set CIRCLEBACK_SKIP_INSTALL=1."
fi

reports_version "$bin_dir/circleback" ||
  die 2 "circleback was installed into $prefix but '$bin_dir/circleback --version' does not report $version (it says: $("$bin_dir/circleback" --version 2>&1 | head -n 1)). The package parameter must provide circleback $version."
link_cli "$bin_dir/circleback"
add_to_path "$bin_dir"
echo "circleback: installed circleback $version into $prefix."

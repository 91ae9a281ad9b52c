#!/bin/sh
# Upload the built package ($1: the dist directory) to PyPI from a CircleCI release job.
#
# Trusted publishing first: the job's OIDC token, with PyPI's audience, is exchanged for a
# short-lived upload token. PyPI does not accept CircleCI's tokens yet (an open request,
# pypi/warehouse#13888); while it refuses, a project-scoped API token in the job's
# restricted context (PYPI_API_TOKEN) is used instead, and the job fails if there is none.
# Nothing here prints a token.
set +x
set -eu
dist=${1:?usage: publish-pypi.sh DIST_DIR}
python -m pip install --quiet twine
python -m twine check --strict "$dist"/*

token=""
if command -v circleci >/dev/null 2>&1; then
  audience=$(python -c 'import json, urllib.request
print(json.load(urllib.request.urlopen("https://pypi.org/_/oidc/audience", timeout=30))["audience"])' 2>/dev/null || true)
  if [ -n "$audience" ]; then
    oidc=$(circleci run oidc get --claims "{\"aud\": \"$audience\"}" 2>/dev/null || true)
    if [ -n "$oidc" ]; then
      token=$(OIDC="$oidc" python -c 'import json, os, urllib.request
request = urllib.request.Request("https://pypi.org/_/oidc/mint-token",
    data=json.dumps({"token": os.environ["OIDC"]}).encode(), method="POST")
print(json.load(urllib.request.urlopen(request, timeout=30))["token"])' 2>/dev/null || true)
    fi
  fi
fi
if [ -n "$token" ]; then
  echo "publish-pypi: using PyPI trusted publishing"
elif [ -n "${PYPI_API_TOKEN:-}" ]; then
  echo "publish-pypi: PyPI did not accept this job's OIDC token; using PYPI_API_TOKEN from the context"
  token=$PYPI_API_TOKEN
else
  echo "publish-pypi: error: PyPI did not accept this job's OIDC token and the context has no PYPI_API_TOKEN." >&2
  exit 2
fi
TWINE_USERNAME=__token__ TWINE_PASSWORD=$token python -m twine upload --non-interactive "$dist"/*

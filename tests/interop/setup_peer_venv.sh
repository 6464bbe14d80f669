#!/usr/bin/env bash
# Creates the virtualenv that runs the independent ActivityPub peer (fediverse-pasture) for
# tests/interop. Its pins (bovine, an older cryptography, quart) are not ours, so it never shares
# fedserver's environment. Idempotent: does nothing when the pinned version is already installed.
#
#   FEDSERVER_PEER_VENV  where to create it (default: .interop-venv, relative to the current folder)
#   PYTHON               interpreter used to create it (default: python3)
set -euo pipefail

PASTURE_VERSION="0.2.25"
VENV="${FEDSERVER_PEER_VENV:-.interop-venv}"
PYTHON="${PYTHON:-python3}"

installed_version() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null || true
from importlib.metadata import version
print(version("fediverse-pasture"))
PY
}

if [ -x "$VENV/bin/python" ] && [ "$(installed_version)" = "$PASTURE_VERSION" ]; then
    echo "peer venv $VENV already has fediverse-pasture $PASTURE_VERSION"
    exit 0
fi

start=$(date +%s)
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "fediverse-pasture==$PASTURE_VERSION"
# Fail here, not in the tests, when the pinned package no longer imports the way the launcher uses it.
"$VENV/bin/python" -c "import fediverse_pasture.one_actor, fediverse_pasture.verify_actor, bovine"
echo "peer venv $VENV ready with fediverse-pasture $PASTURE_VERSION in $(( $(date +%s) - start ))s"

#!/usr/bin/env bash
# Creates the virtualenv that runs the independent ActivityPub peer (fediverse-pasture) for
# tests/interop. Its pins (bovine, quart, an older cryptography) are not ours, so it never shares
# fedserver's environment. Idempotent: does nothing when the venv already holds exactly the pinned
# versions (fediverse-pasture below, its dependencies in peer-constraints.txt).
#
#   FEDSERVER_PEER_VENV  where to create it (default: .interop-venv); a relative path is taken from
#                        the repository root, as tests/interop/test_pasture_peer.py does
#   PYTHON               interpreter used to create it (default: python3)
set -euo pipefail

PASTURE_VERSION="0.2.25"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CONSTRAINTS="$HERE/peer-constraints.txt"
VENV="${FEDSERVER_PEER_VENV:-.interop-venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.fedserver-peer-pins"
WANTED="fediverse-pasture==$PASTURE_VERSION $(sha256sum "$CONSTRAINTS" | cut -d' ' -f1)"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANTED" ]; then
    echo "peer venv $VENV is up to date (fediverse-pasture $PASTURE_VERSION)"
    exit 0
fi

start=$(date +%s)
rm -f "$STAMP"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --constraint "$CONSTRAINTS" \
    "fediverse-pasture==$PASTURE_VERSION"
# Fail here, not in the tests, when the pinned package no longer imports the way the launcher uses it.
"$VENV/bin/python" -c "import bovine, quart, fediverse_pasture.server, fediverse_pasture.verify_actor"
echo "$WANTED" > "$STAMP"
echo "peer venv $VENV ready with fediverse-pasture $PASTURE_VERSION in $(( $(date +%s) - start ))s"

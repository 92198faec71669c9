#!/usr/bin/env bash
# The integration suite once per forced UDP mode of the endpoint (pywebtransport/_io/modes.py):
#   transport  asyncio's datagram transport, the path the Windows proactor loop takes;
#   mmsg       batched recvmmsg/sendmmsg + UDP GSO (the compiled _io._mmsg; its pure twin
#              when the extensions are not built).
# The default mode (auto) is what the main test run covers. Exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PWT_CI_VENV:-$(pwd)/.ci/venv}/bin/python"

for mode in transport mmsg; do
    printf '\n=== tests/integration with PYWEBTRANSPORT_UDP_MODE=%s\n' "$mode"
    PYWEBTRANSPORT_UDP_MODE="$mode" "$PY" -m pytest -q tests/integration
done

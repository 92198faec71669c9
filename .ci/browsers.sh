#!/usr/bin/env bash
# Install the browsers tests/interop drives (Debian's `chromium` and `firefox-esr`) and
# `valgrind`, whose callgrind `python -m benchmarks cost` (and its test) counts instructions with.
#
# Cheap when all are there. Otherwise it installs the missing ones with apt-get, without
# questions, waiting up to 15 minutes for another apt to release its lock. It fails (exit 1)
# with a message when it cannot: the suites that need them fail without them, never skip.
set -euo pipefail

declare -A BINARY=([chromium]=/usr/bin/chromium [firefox-esr]=/usr/bin/firefox-esr [valgrind]=/usr/bin/valgrind)
PACKAGES=(chromium firefox-esr valgrind)

missing=()
for package in "${PACKAGES[@]}"; do
    if [ ! -x "${BINARY[$package]}" ]; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        as_root=(sudo)
    else
        echo "ERROR: ${missing[*]} not installed, and installing needs root or passwordless sudo;" \
             "the interop suite and the cost benchmark's test fail without them" >&2
        exit 1
    fi
    echo "installing ${missing[*]} (Debian packages) for the interop suite and the cost benchmark"
    apt_get=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -q)
    if ! "${apt_get[@]}" update || ! "${apt_get[@]}" install -y "${missing[@]}"; then
        echo "ERROR: apt-get could not install ${missing[*]}; the suites that need them fail" >&2
        exit 1
    fi
fi

for package in "${PACKAGES[@]}"; do
    if [ ! -x "${BINARY[$package]}" ]; then
        echo "ERROR: $package is installed but ${BINARY[$package]} is missing" >&2
        exit 1
    fi
done
echo "browsers: $(/usr/bin/chromium --version 2>/dev/null | head -n 1); $(/usr/bin/firefox-esr --version 2>/dev/null | head -n 1)"
echo "valgrind: $(/usr/bin/valgrind --version)"

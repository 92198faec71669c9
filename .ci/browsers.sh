#!/usr/bin/env bash
# Install the browsers tests/interop drives: Debian's `chromium` and `firefox-esr`.
#
# Cheap when both are there. Otherwise it installs the missing ones with apt-get, without
# questions, waiting up to 15 minutes for another apt to release its lock. It fails (exit 1)
# with a message when it cannot: the interop suite fails without them, never skips.
set -euo pipefail

declare -A BINARY=([chromium]=/usr/bin/chromium [firefox-esr]=/usr/bin/firefox-esr)

missing=()
for package in chromium firefox-esr; do
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
             "the interop suite (tests/interop) fails without them" >&2
        exit 1
    fi
    echo "installing ${missing[*]} (Debian packages) for the interop suite"
    apt_get=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -q)
    if ! "${apt_get[@]}" update || ! "${apt_get[@]}" install -y "${missing[@]}"; then
        echo "ERROR: apt-get could not install ${missing[*]}; the interop suite fails without them" >&2
        exit 1
    fi
fi

for package in chromium firefox-esr; do
    if [ ! -x "${BINARY[$package]}" ]; then
        echo "ERROR: $package is installed but ${BINARY[$package]} is missing" >&2
        exit 1
    fi
done
echo "browsers: $(/usr/bin/chromium --version 2>/dev/null | head -n 1); $(/usr/bin/firefox-esr --version 2>/dev/null | head -n 1)"

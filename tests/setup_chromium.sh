#!/bin/sh
# Installs Debian's chromium for the headless-browser test of `bench report` (tests/test_reports.py).
# Called by that test when no chromium is found; needs root (or password-less sudo) and Debian's package
# archive. Nothing else is downloaded: the browser comes from the distribution's own package.
set -eu
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "setup_chromium: not root and no password-less sudo: cannot install chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null 2>&1

#!/usr/bin/env bash
# Installs Debian's Chromium for the test that renders report.html headless (once per
# machine; needs root, as CI has) and prints the line that tells the tests where it is:
#
#   eval "$(scripts/setup-chromium.sh)"     # export AUTOSEG_CHROMIUM=/usr/bin/chromium
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
fi
echo "export AUTOSEG_CHROMIUM='$(command -v chromium)'"

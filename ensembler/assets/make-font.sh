#!/usr/bin/env bash
# Makes DejaVuSans-ascii.ttf, the font the report's plots are labelled with: DejaVu Sans
# (Debian's fonts-dejavu-core) cut down to printable ASCII and a few signs (°, ×, –, —, −),
# 760 kB to 10 kB, so the binary carries its own font and needs none on the machine.
# Licence: DejaVuSans-LICENSE.txt (Bitstream Vera; DejaVu's changes are public domain).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TMPDIR:-/tmp}/autoseg-fonttools
[ -x "$venv/bin/pyftsubset" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q fonttools; }
"$venv/bin/pyftsubset" /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
  --unicodes="U+0020-007E,U+00B0,U+00D7,U+2013,U+2014,U+2212" --layout-features='' --no-hinting \
  --output-file="$here/DejaVuSans-ascii.ttf"

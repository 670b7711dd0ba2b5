#!/bin/bash
# install-deps.sh - the Debian 12 packages crier needs to build, test and run its demo.
# Idempotent; installs only what is missing. Run as root (or with sudo available).
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config python3 clang-format
  libpq-dev libyaml-dev libjansson-dev libssl-dev libcsv-dev libcmocka-dev
  libesmtp-dev libcurl4-openssl-dev libgmime-3.0-dev
  libcairo2-dev libpango1.0-dev libfreetype-dev libfontconfig-dev libzint-dev
  # channels/imb_font.py makes the IMb's bar font at build time, and channels/sans_font.py
  # Crier Sans from fonts-dejavu-core's DejaVu Sans (below)
  python3-fonttools
  # tests/fuzz: libFuzzer targets built with clang (its runtime is in libclang-rt-14-dev)
  clang libclang-rt-14-dev
  # fonts for letters: DejaVu, and a CJK fallback that fontconfig picks for names
  fonts-dejavu-core fonts-wqy-microhei
  # services the tests and the demo run against
  postgresql postgresql-common postgresql-client
  postfix python3-aiosmtpd
  # checking what crier produces, and bench/
  poppler-utils bc time
  # bench/letters.sh: the same letter rendered by ReportLab, for comparison
  python3-reportlab
  # the fax tests and bench/fax.sh: curl posts to the test gateway, openssl makes its cert
  curl openssl
  # tests/fault/valgrind.sh: one integration flow under memcheck; tests/integration/
  # mail_slices.sh stops a worker at one function (a breakpoint) to end its session there
  valgrind gdb
  # tests/fault/write_error.sh: strace fails one write of a print batch's manifest
  strace
  # tests/integration/report.sh renders the HTML audit report headless to a PNG
  chromium
  # operations (docs/operations.md): sd_notify for crier run under systemd, the man pages
  # (scdoc), systemd-analyze for tests/integration/install.sh, bash completion's helpers
  libsystemd-dev scdoc systemd bash-completion man-db
  # crier run --metrics and crier serve: the HTTP server
  libmicrohttpd-dev
  # tests/integration/browser.sh: the console in Chromium through Selenium
  python3-selenium chromium-driver
  # .ci/deb.sh (CRIER_DEB=1): the Debian package and its lint; .ci/chroot.sh installs it
  # into a fresh Debian 12 (debootstrap)
  debhelper dpkg-dev fakeroot lintian debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# tests/browser/axe.sh: npm fetches axe-core (accessibility checks) into a cache. A machine
# whose Node.js came from elsewhere (NodeSource's nodejs bundles npm) conflicts with
# Debian's npm package, so Debian's pair is installed only where no npm runs at all.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
# Postfix must not start an MTA by itself: the tests start their own smtp-sink.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/bin/sh
# install-config.sh SHIPPED TARGET - meson's install step for the configuration: copy the
# shipped crier.yaml to TARGET (under $DESTDIR) only when no configuration is there, so a
# reinstall never overwrites a local edit. Mode 0640: it may name secret files.
set -eu
shipped="${DESTDIR:-}$1"
target="${DESTDIR:-}$2"
if [ -e "$target" ]; then
  echo "crier: keeping the existing $2 (the shipped one is $1)"
  exit 0
fi
mkdir -p "$(dirname "$target")"
install -m 0640 "$shipped" "$target"
# crier.service runs as the crier user: let its group read the file, once the user exists
# (the Debian package's postinst does the same after making the user)
if [ -z "${DESTDIR:-}" ] && getent group crier >/dev/null; then
  chgrp crier "$target"
fi
echo "crier: installed $2"

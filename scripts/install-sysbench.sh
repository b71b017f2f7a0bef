#!/usr/bin/env bash
# Installs sysbench (TiDB's usual benchmark, driven over the MySQL protocol
# by the TiDB upstream tests) from Debian's packages when it is missing.
set -euo pipefail
if command -v sysbench >/dev/null; then
  exit 0
fi
echo "install-sysbench: installing the Debian package"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq sysbench

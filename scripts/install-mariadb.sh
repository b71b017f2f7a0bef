#!/usr/bin/env bash
# Installs MariaDB (Debian's mariadb-server package) when no mariadbd or
# mysqld is on the PATH, for the MySQL sink's tests: they start their own
# throw-away server on 127.0.0.1 (libs/sink/mysql/mysqltest). CI runs as
# root on fresh machines; elsewhere, without root, it only says what is
# missing (the tests then skip, unless TISTREAM_REQUIRE_MARIADB=1).
set -euo pipefail

have() {
  command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 ||
    [[ -x /usr/sbin/mariadbd || -x /usr/sbin/mysqld ]]
}

if have; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-mariadb: mariadbd is not installed and this is not root; run: apt-get install -y --no-install-recommends mariadb-server" >&2
  exit 0
fi
echo "install-mariadb: installing mariadb-server (Debian package)"
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's own service is not started in containers (no systemd); the
# tests start their own server with a throw-away data directory.
apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null
echo "install-mariadb: installed in $(( $(date +%s) - start ))s"

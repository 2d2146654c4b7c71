#!/bin/sh
# What `make install` needs from the system: python-ldap has no binary wheel, so pip compiles it
# against OpenLDAP's and SASL's headers and Python's own, with a C compiler. On Debian or Ubuntu,
# as root, the missing packages are installed with apt; otherwise one line names them.
#   deploy/build-deps.sh PYTHON
set -eu
python=${1:-python3}
command -v dpkg >/dev/null 2>&1 || exit 0  # not Debian: pip's own error says what is missing
missing=""
for package in gcc libc6-dev libldap-dev libsasl2-dev; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
# Python.h: in python3-dev for Debian's python3; a Python built from source has its own.
include=$("$python" -c 'import sysconfig; print(sysconfig.get_path("include"))')
[ -e "$include/Python.h" ] || missing="$missing python3-dev"
[ -n "$missing" ] || exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "make install: installing$missing with apt-get (python-ldap compiles against them)"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086  # one word per package
  apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; }
else
  echo "make install: python-ldap compiles against Debian packages this machine lacks; install them first: sudo apt-get install$missing" >&2
  exit 1
fi

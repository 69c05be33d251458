#!/usr/bin/env bash
# Install the Debian packages named on the command line that are missing, with one `apt-get update`
# for all of them. Not root: say which are missing and how to install them, and go on (what needs
# them then fails or, as `make run` does without clamd, says so at start-up).
#   tools/debian-packages.sh WHAT-FOR package...
set -u
what=$1
shift
missing=()
for package in "$@"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "$what: missing Debian packages: ${missing[*]}; run 'sudo apt-get install -y ${missing[*]}'" >&2
  exit 0
fi
echo "$what: installing ${missing[*]}" >&2
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
  || echo "$what: installing ${missing[*]} failed" >&2

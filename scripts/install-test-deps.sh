#!/usr/bin/env bash
# Debian packages the tests drive as real peers: Kamailio (evapi, ims_charging, acc_radius, cnxcc),
# sipp, radclient, FreeRADIUS (benchmark baseline), freeDiameter, tshark/tcpdump. Idempotent.
set -euo pipefail
PACKAGES=(kamailio kamailio-extra-modules kamailio-json-modules kamailio-utils-modules
          kamailio-ims-modules kamailio-radius-modules kamailio-cnxcc-modules
          sip-tester freeradius-utils freeradius sqlite3 freediameterd freediameter-extensions
          tshark tcpdump openssl procps iproute2)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo_cmd() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
echo "installing: ${missing[*]}" >&2
sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

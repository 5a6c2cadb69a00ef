#!/bin/sh
# Install the system packages polygen's tests run against:
#   nginx, isc-dhcp-server (dhcpd), kea-dhcp4-server (kea-dhcp4), dnsmasq (deployment tests),
#   chromium (headless, for the status page's browser tests; it has no service) and postgresql
#   (the tests run a throwaway server of their own with initdb; `--db postgresql://`).
#
# * Idempotent: installs only the packages that are missing; does nothing if all are present.
# * Installs leave nothing running or enabled: Debian's postinst scripts start nginx, dnsmasq,
#   isc-dhcp-server and postgresql's "main" cluster (and enable their units). A temporary
#   /usr/sbin/policy-rc.d exiting 101 forbids the starts; any pre-existing policy-rc.d is put back afterwards. The services of the
#   packages installed *by this run* are then stopped (in case one started anyway) and disabled.
#   Packages that were already installed are left alone, so an admin's own nginx keeps running.
# * Not root and something missing: prints the apt-get command to run and exits 1.
#
# Usage: scripts/system-deps.sh            (called by `make test`)
set -eu

# package:binary:[service[:service...]] (the colon after the binary is required, even with no service)
SPECS="nginx:/usr/sbin/nginx:nginx
isc-dhcp-server:/usr/sbin/dhcpd:isc-dhcp-server:isc-dhcp-server6
kea-dhcp4-server:/usr/sbin/kea-dhcp4:kea-dhcp4-server
dnsmasq:/usr/sbin/dnsmasq:dnsmasq
chromium:/usr/bin/chromium:
postgresql:/usr/bin/pg_ctlcluster:postgresql"

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

missing=""
services=""
for spec in $SPECS; do
    pkg=${spec%%:*}
    rest=${spec#*:}
    bin=${rest%%:*}
    if is_installed "$pkg" && [ -x "$bin" ]; then
        continue
    fi
    missing="$missing $pkg"
    services="$services $(printf '%s' "${rest#*:}" | tr ':' ' ')"
done

# shellcheck disable=SC2086  # squeeze the blanks packages without a service (chromium) leave
services=$(echo $services)

if [ -z "$missing" ]; then
    echo "system-deps: nginx, isc-dhcp-server, kea-dhcp4-server, dnsmasq, chromium, postgresql already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing packages:$missing" >&2
    echo "system-deps: install them as root (they must not be left running):" >&2
    echo "  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$missing" >&2
    if [ -n "$services" ]; then
        echo "  sudo systemctl disable --now $services" >&2
    fi
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
POLICY=/usr/sbin/policy-rc.d
BACKUP=""
if [ -e "$POLICY" ] || [ -L "$POLICY" ]; then
    BACKUP=$(mktemp /usr/sbin/.policy-rc.d.polygen.XXXXXX)
    cp -p "$POLICY" "$BACKUP"
fi

restore_policy() {
    if [ -n "$BACKUP" ]; then
        mv -f "$BACKUP" "$POLICY"
    else
        rm -f "$POLICY"
    fi
}
trap restore_policy EXIT
trap 'exit 130' INT TERM

printf '#!/bin/sh\n# temporary, written by polygen scripts/system-deps.sh: forbid service starts\nexit 101\n' >"$POLICY"
chmod 0755 "$POLICY"

echo "system-deps: installing$missing"
apt_install() {
    # shellcheck disable=SC2086  # word splitting of $missing is intended
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing
}
if ! apt_install; then
    # Stale or absent package lists (a fresh CI image): refresh once and retry.
    apt-get update -q
    apt_install
fi

# Stop whatever started despite the policy, then disable it (unit symlinks and rc.d links).
for svc in $services; do
    if [ -d /run/systemd/system ]; then
        systemctl stop "$svc" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ]; then
        "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --quiet "$svc" >/dev/null 2>&1 || true
    fi
    if [ -x "/etc/init.d/$svc" ] && command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
done

echo "system-deps: done (installed:$missing; services left stopped and disabled: ${services:-none})"

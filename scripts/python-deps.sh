#!/bin/sh
# Install Python's venv and pip on Debian/Ubuntu when they are missing (needs root).
set -eu
if [ "$(id -u)" -ne 0 ]; then
    echo "python3 lacks venv/ensurepip: run 'sudo apt-get install python3-venv python3-pip' and try again" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3-venv python3-pip >/dev/null

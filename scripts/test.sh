#!/usr/bin/env bash
# The whole test suite, from a fresh machine with only Python, pip and apt:
# installs PostgreSQL and Chromium (Debian packages) and the Python test deps,
# then runs pytest. The tests start their own throwaway PostgreSQL cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ ! -x /usr/bin/chromium ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq postgresql chromium >/dev/null
fi
python3 -m pip install -q -e '.[test]' 2>&1 | grep -v -E "^(WARNING: Running pip as|WARNING: Location)" || true
python3 -c "import tracelake, starlette, mlflow, psycopg" # fail early when an install failed
exec python3 -m pytest "$@"

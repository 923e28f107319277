#!/usr/bin/env bash
# The tools the tests run for real beside the Python `test` extra:
#   - Debian's haproxy, the router (installed with apt-get when run as root; otherwise say how);
#   - Debian's prometheus, which the serving harness runs with each stack's own scrape config;
#   - systemd's `systemd-analyze`, which checks the systemd target's units (the same way);
#   - the gateway, LiteLLM's PyPI release, in a virtual environment of its own (.venv-gateway),
#     installed with hashes from tests/integration/requirements-gateway.txt.
# A tool that cannot be installed is reported here, and the tests that need it skip with the reason.
set -u
cd "$(dirname "$0")/.."

if ! command -v haproxy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; } >/dev/null 2>&1 \
      || echo "tests/tools.sh: could not install haproxy; the router tests will skip"
  else
    echo "tests/tools.sh: haproxy is not installed (apt-get install haproxy); the router tests will skip"
  fi
fi

if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
      >/dev/null 2>&1 || echo "tests/tools.sh: could not install prometheus; the scrape checks will skip"
  else
    echo "tests/tools.sh: prometheus is not installed (apt-get install prometheus); the scrape checks will skip"
  fi
fi

if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; } >/dev/null 2>&1 \
      || echo "tests/tools.sh: could not install systemd; the unit checks will skip"
  else
    echo "tests/tools.sh: systemd-analyze is not installed (apt-get install systemd); the unit checks will skip"
  fi
fi

lock=tests/integration/requirements-gateway.txt
stamp=.venv-gateway/.requirements.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ ! -x .venv-gateway/bin/litellm ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf .venv-gateway
  if python3 -m venv .venv-gateway \
      && .venv-gateway/bin/pip install -qq --disable-pip-version-check --require-hashes --no-deps -r "$lock"; then
    echo "$want" > "$stamp"
  else
    echo "tests/tools.sh: could not install the gateway from $lock; the gateway tests will skip"
    rm -rf .venv-gateway
  fi
fi
exit 0

#!/usr/bin/env bash
# Starts what the tests talk to: PostgreSQL on 127.0.0.1:5432 (database `test`), and installs
# Chromium (/usr/bin/chromium) for the chat-page browser test when it is missing.
# Under CI=true a service that cannot be started fails the run instead of skipping tests.
set -uo pipefail
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  fi
fi
if ! pg_up; then
  echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2
  [ "${CI:-}" = "true" ] && exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
    $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1; } \
      || true
  fi
  if [ ! -x /usr/bin/chromium ]; then
    echo "Chromium is not installed at /usr/bin/chromium (apt-get install chromium failed)" >&2
    [ "${CI:-}" = "true" ] && exit 1
  fi
fi
exit 0

#!/usr/bin/env bash
# Debian's chromium for the dashboard's headless-browser test (source this file, then call chromium_install):
# installed with apt-get when missing and we are root; the test fails with a clear message when there is none.

chromium_install() {
  command -v chromium >/dev/null && return 0
  if [ "$(id -u)" -ne 0 ]; then echo "chromium: not installed and not root, cannot apt-get install chromium" >&2; return 1; fi
  echo "chromium: installing chromium with apt-get (not installed)" >&2
  local try
  for try in 1 2 3; do
    if apt-get -o DPkg::Lock::Timeout=120 update -qq >/dev/null &&
       DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq chromium >/dev/null; then
      command -v chromium >/dev/null && return 0
    fi
    echo "chromium: apt-get failed (try $try), retrying in 10 s" >&2
    sleep 10
  done
  return 1
}

#!/usr/bin/env bash
# The browser the dashboard's tests drive: Debian's headless Chromium and its WebDriver, and
# playwright-core from npm (crates/beacon/tests/browser). Installs what is missing and fails
# when the browser still cannot run, so the browser suite never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  # Another apt may be running (a fresh machine's own updates): wait for its lock.
  while fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1; do sleep 3; done
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
fi
if ! command -v node >/dev/null 2>&1; then
  echo "browser.sh: node is missing (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
(cd crates/beacon/tests/browser && npm ci --silent --no-audit --no-fund)

# The browser must start, not just be installed.
if ! /usr/lib/chromium/chromium --headless --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1; then
  echo "browser.sh: chromium is installed but does not start headless" >&2
  exit 1
fi
chromedriver --version >/dev/null
echo "browser.sh: $(/usr/lib/chromium/chromium --version), playwright-core $(node -p "require('./crates/beacon/tests/browser/node_modules/playwright-core/package.json').version")"

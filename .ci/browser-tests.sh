#!/usr/bin/env bash
# Browser tests of the console: headless Chromium driven over WebDriver by
# tests/console_browser.rs. Installs Debian's chromium and chromium-driver
# when missing, runs the tests with AUPD_BROWSER_TESTS=1 and prints the test
# runner's summary. Screenshots land in target/console-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
    echo "== installing chromium and chromium-driver"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y chromium chromium-driver
fi
/usr/bin/chromium --version 2>/dev/null | head -n 1
/usr/bin/chromedriver --version | head -n 1

echo "== browser tests"
mkdir -p target
status=0
AUPD_BROWSER_TESTS=1 cargo test --test console_browser -- --test-threads=1 2>&1 \
    | tee target/browser-test.log || status=$?
echo "== summary"
grep "^test result:" target/browser-test.log || echo "no test summary (build failed?)"
if [ -d target/console-screenshots ]; then
    echo "screenshots: $(ls target/console-screenshots | tr '\n' ' ')"
fi
exit "$status"

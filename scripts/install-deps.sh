#!/usr/bin/env bash
# Installs what licence-hub needs on a fresh Debian machine: system tools (PDF validators, NSS, fonts)
# and the Python virtualenv at .venv with the project and, with --test, its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

# Debian packages the hub and its tests use: pdfsig (poppler-utils), qpdf, certutil (libnss3-tools),
# the SoftHSM2 PKCS#11 token (seal keys in an HSM), Noto CJK fonts (seal images, licence PDFs) and
# openssl (cms/ts verification in tests).
packages=(poppler-utils qpdf libnss3-tools softhsm2 fonts-noto-cjk openssl)
# The browser tests drive Debian's Chromium through Playwright (browser downloads are not possible here)
# and check accessibility with axe-core from the npm registry (needs node and npm).
if [[ -n "$extras" ]]; then
  packages+=(chromium)
  command -v npm >/dev/null || packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: missing Debian packages (${missing[*]}); run as root or: sudo apt-get install ${missing[*]}" >&2
  fi
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed${extras:+-test}"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
  touch "$stamp"
fi

if [[ -n "$extras" && ! -f tests/e2e/axe/node_modules/axe-core/axe.min.js ]]; then
  (cd tests/e2e/axe && npm ci --no-audit --no-fund --silent)
fi

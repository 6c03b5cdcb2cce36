#!/usr/bin/env bash
# Regenerate requirements/constraints.txt: a clean install of `.[kubernetes,gateway]`
# into a throw-away venv, then `pip freeze` of it (without gagebench itself).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q ".[kubernetes,gateway]"
{
  sed -n '1,/^# (a `pip freeze`/p' requirements/constraints.txt
  "$tmp/venv/bin/pip" freeze --exclude gagebench
} > "$tmp/constraints.txt"
mv "$tmp/constraints.txt" requirements/constraints.txt
echo "wrote requirements/constraints.txt"

#!/usr/bin/env bash
# Installs the project's npm dependencies from the lock: `npm ci`, and when npm refuses the lock for the quirk
# below, `npm install` from the same lock, failing if that had to change package.json or the lock. Shared by
# every entry point that installs (.ci/run and the demo). Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Quirk: the registry these machines reach serves Biome's native binary only for the platforms it hosts, so
# the lock cannot list the other platforms' optional packages and npm 11's `npm ci` rejects it as out of sync.
# Then install from the same lock with `npm install`, and fail if that had to change package.json or the lock
# (real drift between them is still an error).
if ! npm ci --no-audit --no-fund; then
  echo "npm ci refused the lock; installing from it with npm install instead"
  npm install --no-audit --no-fund
  git diff --exit-code -- package.json package-lock.json
fi

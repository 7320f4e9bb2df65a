#!/usr/bin/env bash
# `npm run demo`: a restore-point cycle on a throwaway VM, driven through the libvirt-snapshot CLI.
# Works on a fresh clone: installs the npm dependencies if node_modules is missing, builds if the build is
# missing or older than the sources, makes sure a local libvirt answers (as root it prepares the host with
# scripts/libvirt-host.sh), then runs the walk in scripts/demo.ts. Arguments go to the walk:
#   --keep   leave the demo VM (and its files) in place afterwards
# Exit status: 0 when every step and data check passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n==> %s\n' "$*"; }

if [[ ! -d node_modules ]]; then
  say "installing npm dependencies (scripts/npm-install.sh)"
  bash scripts/npm-install.sh
fi

# Rebuild when the CLI is missing or any source of the build is newer than it.
cli="dist/cli/main.js"
if [[ ! -f "$cli" ]] || [[ -n "$(find provider cli sdk tsconfig.json tsconfig.build.json -newer "$cli" \
  \( -name '*.ts' -o -name 'tsconfig*.json' \) -print -quit 2>/dev/null)" ]]; then
  say "building (npm run build)"
  npm run build --silent
fi

uri="qemu:///system"
if ! virsh -c "$uri" version >/dev/null 2>&1; then
  if [[ "$(id -u)" -eq 0 ]]; then
    say "libvirt does not answer on $uri: preparing this host (scripts/libvirt-host.sh)"
    bash scripts/libvirt-host.sh
  else
    echo "demo: libvirt does not answer on $uri and this is not root, so the demo cannot prepare the host." >&2
    echo "demo: run it as root (sudo npm run demo), or prepare the host once: sudo bash scripts/libvirt-host.sh" >&2
    exit 1
  fi
fi

say "restore-point walk (scripts/demo.ts)"
exec npx tsx scripts/demo.ts "$@"

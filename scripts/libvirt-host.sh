#!/usr/bin/env bash
# Prepares this machine to run the integration tests and benchmarks: libvirt + QEMU installed, virtlogd and
# libvirtd running (there is no systemd on the build machines), and the accelerator decided (KVM or TCG).
# Idempotent: run it as often as you like; it only installs or starts what is missing.
#
#   sudo bash scripts/libvirt-host.sh
#
# Environment:
#   LIBVIRT_SUITE   apt suite to take the libvirt/QEMU packages from, e.g. LIBVIRT_SUITE=bookworm-backports for
#                   libvirt 11.3 (adds `-t bookworm-backports` to apt-get install; the suite must already be in
#                   the apt sources). Empty (default): the distribution's own packages (libvirt 9.0, QEMU 7.2).
#   LIBVIRT_WAIT_SECONDS  how long to wait for libvirtd to answer after starting it (default 30).
#
# Hook for transport tests: if scripts/host/transports.sh exists (owned by the transport tests), it is
# `source`d BEFORE libvirtd is started, so it can write libvirtd.conf, certificates and start sshd. When it sets
# LIBVIRTD_LISTEN=1, libvirtd is started with --listen (TCP/TLS listeners). A libvirtd that is already running
# is never restarted by this script; stop it yourself if its listeners must change.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
uri="qemu:///system"
socket="/var/run/libvirt/libvirt-sock"
wait_seconds="${LIBVIRT_WAIT_SECONDS:-30}"

# The one list of what the tests need. python3-libvirt is for bench/. busybox-static, qemu-guest-agent, cpio
# and e2fsprogs build the small Linux test guest (test/support/linux-guest); its kernel is downloaded as a
# .deb and unpacked, never installed as the host's kernel.
libvirt_packages=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils python3-libvirt)
guest_packages=(busybox-static qemu-guest-agent cpio e2fsprogs kmod xz-utils)

log() { printf 'libvirt-host: %s\n' "$*"; }
die() {
  printf 'libvirt-host: error: %s\n' "$*" >&2
  exit 1
}

missing_packages() {
  local pkg status
  for pkg in "$@"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || printf '%s\n' "$pkg"
  done
}

libvirt_answers() { virsh -c "$uri" version >/dev/null 2>&1; }

if [[ "$(id -u)" -ne 0 ]]; then
  mapfile -t missing < <(missing_packages "${libvirt_packages[@]}" "${guest_packages[@]}")
  if ((${#missing[@]} > 0)); then
    die "not root and packages are missing: ${missing[*]}. Run: sudo bash scripts/libvirt-host.sh (or: sudo apt-get install ${missing[*]})"
  fi
  libvirt_answers || die "libvirt does not answer on $uri ($socket). Run: sudo bash scripts/libvirt-host.sh"
  log "libvirt answers on $uri (not root: nothing installed or started)"
  exit 0
fi

# --- packages -------------------------------------------------------------------------------------------
mapfile -t missing_libvirt < <(missing_packages "${libvirt_packages[@]}")
mapfile -t missing_guest < <(missing_packages "${guest_packages[@]}")
if ((${#missing_libvirt[@]} + ${#missing_guest[@]} > 0)); then
  log "installing: ${missing_libvirt[*]} ${missing_guest[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ((${#missing_libvirt[@]} > 0)); then
    suite_args=()
    [[ -n "${LIBVIRT_SUITE:-}" ]] && suite_args=(-t "$LIBVIRT_SUITE")
    apt-get install -y -qq --no-install-recommends "${suite_args[@]}" "${missing_libvirt[@]}"
  fi
  if ((${#missing_guest[@]} > 0)); then
    apt-get install -y -qq --no-install-recommends "${missing_guest[@]}"
  fi
else
  log "packages present"
fi

# --- transports hook (see the header) -------------------------------------------------------------------
LIBVIRTD_LISTEN="${LIBVIRTD_LISTEN:-0}"
if [[ -f "$script_dir/host/transports.sh" ]]; then
  log "sourcing scripts/host/transports.sh"
  # shellcheck source=/dev/null
  source "$script_dir/host/transports.sh"
fi

# --- daemons --------------------------------------------------------------------------------------------
if ! pgrep -x virtlogd >/dev/null; then
  log "starting virtlogd"
  virtlogd -d
fi
if ! pgrep -x libvirtd >/dev/null; then
  libvirtd_args=(-d)
  [[ "$LIBVIRTD_LISTEN" == "1" ]] && libvirtd_args+=(--listen)
  log "starting libvirtd ${libvirtd_args[*]}"
  libvirtd "${libvirtd_args[@]}"
fi
deadline=$((SECONDS + wait_seconds))
until libvirt_answers; do
  ((SECONDS < deadline)) || die "libvirtd did not answer on $uri within ${wait_seconds}s (socket $socket)"
  sleep 0.2
done
log "libvirt answers: $(virsh -c "$uri" version | grep -E 'Running hypervisor|Using library' | tr -s ' ' | paste -sd ';')"

# --- accelerator ----------------------------------------------------------------------------------------
# QEMU runs as libvirt-qemu (group kvm): /dev/kvm must be group-accessible for KVM guests to start.
if [[ -e /dev/kvm ]]; then
  getent group kvm >/dev/null && chgrp kvm /dev/kvm && chmod 660 /dev/kvm
  if virsh -c "$uri" domcapabilities --virttype kvm >/dev/null 2>&1; then
    if [[ -d /sys/module/kvm_pvm ]]; then
      log "accelerator: kvm (kvm_pvm: shadow paging; the Linux test guest runs under tcg, see test/support/linux-guest.ts)"
    else
      log "accelerator: kvm"
    fi
  else
    log "accelerator: tcg (libvirt reports no kvm domain capabilities)"
  fi
else
  log "accelerator: tcg (no /dev/kvm)"
fi

# --- image root for the test lab ------------------------------------------------------------------------
# Traversable by libvirt-qemu (the lab puts one directory per test domain below it).
lab_root="${LAB_ROOT:-/var/lib/libvirt/images/lvsnap-lab}"
install -d -m 0755 "$lab_root"
log "lab root: $lab_root"

# --- the Linux test guest (kernel + initramfs, built once per machine and cached) ----------------------------
guest_dir="$(bash "$script_dir/../test/support/linux-guest/build.sh")"
log "linux test guest: $guest_dir"

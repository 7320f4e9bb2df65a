#!/usr/bin/env bash
# Builds the lab's Linux test guest from Debian packages, once per machine, and prints the directory that
# holds it: vmlinuz (the Debian kernel, unpacked from its .deb, never installed as the host's kernel),
# initrd.img (busybox-static, qemu-ga with its shared libraries, the virtio/ext4 modules, the scripts beside
# this file) and cmdline; vmlinux is the same kernel uncompressed, for a PVH boot (see below).
#
#   bash test/support/linux-guest/build.sh            (as root; scripts/libvirt-host.sh runs it)
#
# The cache directory is keyed by the kernel package and version, the busybox-static and qemu-guest-agent
# versions and a hash of the files beside this script, so a change to any of them builds a new guest. Safe to
# run concurrently (flock) and again (a finished build is reused). LVSNAP_GUEST_CACHE overrides the cache root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${LVSNAP_GUEST_CACHE:-/var/cache/lvsnap-lab}/linux-guest"
modules=(virtio_pci virtio_blk virtio_console ext4 crc32c_generic)

die() {
  printf 'linux-guest: error: %s\n' "$*" >&2
  exit 1
}
installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || die "package $1 is not installed (run scripts/libvirt-host.sh)"; }

kernel_package="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
[[ -n "$kernel_package" ]] || die "apt knows no linux-image-amd64 (run apt-get update)"
kernel_version="$(apt-cache policy "$kernel_package" | awk '/Candidate:/ {print $2}')"
scripts_hash="$(cat "$here/build.sh" "$here/init" "$here/lvsnap-writer" "$here/shutdown" | sha256sum | cut -c1-12)"
key="${kernel_package}_${kernel_version}_bb$(installed_version busybox-static)_ga$(installed_version qemu-guest-agent)_${scripts_hash}"
key="${key//[^A-Za-z0-9._-]/_}"
target="$cache_root/$key"

mkdir -p "$cache_root"
chmod 0755 "$cache_root" "$(dirname "$cache_root")"
exec 9>"$cache_root/.lock"
flock 9
if [[ -f "$target/ready" ]]; then
  printf '%s\n' "$target"
  exit 0
fi

started=$SECONDS
work="$(mktemp -d "$cache_root/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download -q -o APT::Sandbox::User=root "$kernel_package" >&2
dpkg-deb -x ./"${kernel_package}"_*.deb kernel
uname_r="$(ls kernel/lib/modules)"
depmod -b kernel "$uname_r"

root="$work/initramfs"
mkdir -p "$root"/{bin,sbin,etc,lib/modules,lib64,usr/sbin}
cp /bin/busybox "$root/bin/busybox"
ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is not static (install busybox-static)"
# Module load order from the kernel's own dependency data (softdeps included), each module once.
modprobe -d kernel -S "$uname_r" --show-depends -a "${modules[@]}" | awk '$1 == "insmod" {print $2}' | awk '!seen[$0]++' |
  while read -r module; do
    cp "$module" "$root/lib/modules/"
    basename "$module" >>"$root/etc/modules-order"
  done
# qemu-ga and the shared libraries it links against, at the same paths as on the host.
cp /usr/sbin/qemu-ga "$root/usr/sbin/qemu-ga"
ldd /usr/sbin/qemu-ga | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r library; do
  mkdir -p "$root$(dirname "$library")"
  cp -L "$library" "$root$library"
done
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/lvsnap-writer" "$root/bin/lvsnap-writer"
install -m 0755 "$here/shutdown" "$root/sbin/shutdown"

mkdir -p "$work/out"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$work/out/initrd.img"
# Quirk: the bzImage's own XZ decompressor takes about 20 s under TCG. The Debian kernel is built with
# CONFIG_PVH, so QEMU can boot the uncompressed ELF directly (PVH entry): unpack it here once instead.
vmlinuz="kernel/boot/vmlinuz-$uname_r"
xz_offset="$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)"
[[ -n "$xz_offset" ]] || die "no XZ payload in $vmlinuz"
# xz stops with an error at the bzImage's trailer after the payload; the ELF check below is what counts.
tail -c +"$((xz_offset + 1))" "$vmlinuz" | xz -dc >"$work/out/vmlinux" 2>/dev/null || true
[[ "$(head -c 4 "$work/out/vmlinux" | od -An -c | tr -d ' ')" == '177ELF' ]] || die "unpacking vmlinux failed"
# cryptomgr.notests: the crypto self-tests cost seconds under TCG and test nothing of ours.
echo "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off cryptomgr.notests" >"$work/out/cmdline"
touch "$work/out/ready"
chmod 0755 "$work/out"
chmod 0644 "$work/out"/*
mv "$work/out" "$target"
# Older builds (other package versions or scripts) are no longer used by this checkout.
find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name "$key" ! -name '.build.*' -exec rm -rf {} +
printf 'linux-guest: built %s in %ss (kernel %s)\n' "$target" "$((SECONDS - started))" "$uname_r" >&2
printf '%s\n' "$target"

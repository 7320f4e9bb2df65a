# shellcheck shell=bash
# Remote-transport lab for the test host: libvirtd listening on TCP and TLS on 127.0.0.1, a throwaway PKI in
# libvirt's standard paths, and a private sshd on 127.0.0.1:2222 that lets root in with a throwaway key.
#
# SOURCED (not executed) by scripts/libvirt-host.sh BEFORE it starts libvirtd. Contract with that script:
#   - once the PKI and libvirtd.conf are in place, LIBVIRTD_LISTEN=1 is exported: start libvirtd with
#     `libvirtd -d --listen` (without the certificates, a listening libvirtd would refuse to start, so a failed
#     PKI step leaves LIBVIRTD_LISTEN alone);
#   - LVSNAP_TRANSPORT_LAB (exported) is the lab directory; tests read the same variable with the same default;
#   - sourcing always returns 0, even under `set -euo pipefail`: a lab that could not be completed is reported on
#     stderr and makes only the transport tests fail, never the host preparation.
# Idempotent: files that exist are kept, the libvirtd.conf block is rewritten in place, sshd is started only
# when our own instance is not running. It never stops or restarts libvirtd.
#
# Lab layout ($LVSNAP_TRANSPORT_LAB):
#   ca/                      throwaway CA (cacert.pem, cakey.pem) and a foreign CA (foreign-*.pem)
#   pki-client/              cacert.pem clientcert.pem clientkey.pem          -> for ?pkipath= (good)
#   pki-foreign-client/      real CA, client cert signed by the foreign CA     -> the server must refuse it
#   pki-foreign-ca/          foreign CA as trust anchor, good client cert      -> the client must refuse the server
#   wrong-name-server/       servercert.pem/serverkey.pem for CN=wrong.invalid, signed by the real CA
#   ssh/                     sshd_config, host key, client_key(.pub), authorized_keys, known_hosts, sshd.pid

LVSNAP_TRANSPORT_LAB="${LVSNAP_TRANSPORT_LAB:-/var/lib/lvsnap-lab/transports}"
export LVSNAP_TRANSPORT_LAB
# Where libvirt's PKI lives (overridable to try this script in a sandbox).
LVSNAP_PKI_ROOT="${LVSNAP_PKI_ROOT:-/etc/pki}"

lvsnap_transports_need_packages() {
  local missing=()
  command -v certtool >/dev/null 2>&1 || missing+=(gnutls-bin)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  command -v nc >/dev/null 2>&1 || missing+=(netcat-openbsd)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "transports.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# $1 output cert, $2 output key, $3 signing CA cert, $4 signing CA key, $5 template text. Kept if present.
lvsnap_transports_issue() {
  local cert="$1" key="$2" ca_cert="$3" ca_key="$4" template="$5" tmpl
  [ -s "$cert" ] && [ -s "$key" ] && return 0
  tmpl="$(mktemp)"
  printf '%s\n' "$template" >"$tmpl"
  (umask 077 && certtool --generate-privkey --key-type rsa --bits 2048 --outfile "$key" 2>/dev/null) &&
    certtool --generate-certificate --load-privkey "$key" --load-ca-certificate "$ca_cert" \
      --load-ca-privkey "$ca_key" --template "$tmpl" --outfile "$cert" >/dev/null 2>&1
  local status=$?
  rm -f "$tmpl"
  return "$status"
}

# $1 cert, $2 key, $3 common name. Kept if present.
lvsnap_transports_make_ca() {
  local cert="$1" key="$2" cn="$3" tmpl
  [ -s "$cert" ] && [ -s "$key" ] && return 0
  tmpl="$(mktemp)"
  printf 'cn = %s\nca\ncert_signing_key\nexpiration_days = 3650\n' "$cn" >"$tmpl"
  (umask 077 && certtool --generate-privkey --key-type rsa --bits 2048 --outfile "$key" 2>/dev/null) &&
    certtool --generate-self-signed --load-privkey "$key" --template "$tmpl" --outfile "$cert" >/dev/null 2>&1
  local status=$?
  rm -f "$tmpl"
  return "$status"
}

# Copies $1 to $2 (mode $3) unless $2 exists with other content that this lab did not write.
lvsnap_transports_install() {
  local src="$1" dest="$2" mode="$3"
  if [ -e "$dest" ] && ! cmp -s "$src" "$dest"; then
    if ! grep -qs "lvsnap-lab" "$dest.lvsnap-lab" 2>/dev/null; then
      echo "transports.sh: $dest exists and was not written by this lab; left alone" >&2
      return 1
    fi
  fi
  mkdir -p "$(dirname "$dest")"
  install -m "$mode" "$src" "$dest" && echo "lvsnap-lab" >"$dest.lvsnap-lab"
}

lvsnap_transports_pki() {
  local lab="$LVSNAP_TRANSPORT_LAB" ca="$LVSNAP_TRANSPORT_LAB/ca"
  mkdir -p "$ca" "$lab/pki-client" "$lab/pki-foreign-client" "$lab/pki-foreign-ca" "$lab/wrong-name-server" &&
    chmod 700 "$ca" || return 1
  lvsnap_transports_make_ca "$ca/cacert.pem" "$ca/cakey.pem" "lvsnap-lab throwaway CA" || return 1
  lvsnap_transports_make_ca "$ca/foreign-cacert.pem" "$ca/foreign-cakey.pem" "lvsnap-lab foreign CA" || return 1
  lvsnap_transports_issue "$ca/servercert.pem" "$ca/serverkey.pem" "$ca/cacert.pem" "$ca/cakey.pem" \
    "$(printf 'organization = lvsnap-lab\ncn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\nip_address = ::1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 3650')" ||
    return 1
  lvsnap_transports_issue "$lab/pki-client/clientcert.pem" "$lab/pki-client/clientkey.pem" \
    "$ca/cacert.pem" "$ca/cakey.pem" \
    "$(printf 'organization = lvsnap-lab\ncn = lvsnap-client\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 3650')" ||
    return 1
  lvsnap_transports_issue "$lab/pki-foreign-client/clientcert.pem" "$lab/pki-foreign-client/clientkey.pem" \
    "$ca/foreign-cacert.pem" "$ca/foreign-cakey.pem" \
    "$(printf 'organization = lvsnap-lab\ncn = lvsnap-foreign-client\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 3650')" ||
    return 1
  lvsnap_transports_issue "$lab/wrong-name-server/servercert.pem" "$lab/wrong-name-server/serverkey.pem" \
    "$ca/cacert.pem" "$ca/cakey.pem" \
    "$(printf 'organization = lvsnap-lab\ncn = wrong.invalid\ndns_name = wrong.invalid\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 3650')" ||
    return 1
  cp "$ca/cacert.pem" "$lab/pki-client/cacert.pem" &&
    cp "$ca/cacert.pem" "$lab/pki-foreign-client/cacert.pem" &&
    cp "$ca/foreign-cacert.pem" "$lab/pki-foreign-ca/cacert.pem" &&
    cp "$lab/pki-client/clientcert.pem" "$lab/pki-foreign-ca/clientcert.pem" &&
    cp "$lab/pki-client/clientkey.pem" "$lab/pki-foreign-ca/clientkey.pem" || return 1
  local pki="$LVSNAP_PKI_ROOT"
  lvsnap_transports_install "$ca/cacert.pem" "$pki/CA/cacert.pem" 644 &&
    lvsnap_transports_install "$ca/servercert.pem" "$pki/libvirt/servercert.pem" 644 &&
    lvsnap_transports_install "$ca/serverkey.pem" "$pki/libvirt/private/serverkey.pem" 600 &&
    lvsnap_transports_install "$lab/pki-client/clientcert.pem" "$pki/libvirt/clientcert.pem" 644 &&
    lvsnap_transports_install "$lab/pki-client/clientkey.pem" "$pki/libvirt/private/clientkey.pem" 600
}

# Rewrites our marked block at the end of libvirtd.conf (libvirtd reads the last assignment of a key).
lvsnap_transports_libvirtd_conf() {
  local conf="${LVSNAP_LIBVIRTD_CONF:-/etc/libvirt/libvirtd.conf}" tmp
  tmp="$(mktemp)"
  sed '/^# BEGIN lvsnap-lab transports$/,/^# END lvsnap-lab transports$/d' "$conf" >"$tmp" 2>/dev/null
  cat >>"$tmp" <<'EOF'
# BEGIN lvsnap-lab transports
listen_tcp = 1
listen_tls = 1
auth_tcp = "none"
auth_tls = "none"
listen_addr = "127.0.0.1"
# END lvsnap-lab transports
EOF
  if cmp -s "$tmp" "$conf"; then rm -f "$tmp"; else cat "$tmp" >"$conf" && rm -f "$tmp"; fi
}

lvsnap_transports_sshd() {
  local dir="$LVSNAP_TRANSPORT_LAB/ssh" pid
  mkdir -p "$dir" && chmod 700 "$dir" || return 1
  [ -s "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C lvsnap-lab-host -f "$dir/ssh_host_ed25519_key" || return 1
  [ -s "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C lvsnap-lab-client -f "$dir/client_key" || return 1
  cp "$dir/client_key.pub" "$dir/authorized_keys" && chmod 600 "$dir/authorized_keys" || return 1
  {
    printf '[127.0.0.1]:2222 %s\n' "$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")"
    printf '[localhost]:2222 %s\n' "$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")"
  } >"$dir/known_hosts"
  cat >"$dir/sshd_config" <<EOF
Port 2222
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
LogLevel ERROR
EOF
  pid="$(cat "$dir/sshd.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/sshd_config"; then
    return 0
  fi
  mkdir -p /run/sshd && chmod 755 /run/sshd
  # sshd daemonizes before it binds: only its pid file says whether it really listens. -E keeps its log.
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log" || true
  local tries
  for tries in $(seq 50); do
    pid="$(cat "$dir/sshd.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "transports.sh: sshd on 127.0.0.1:2222 did not start: $(tail -n 3 "$dir/sshd.log" 2>/dev/null)" >&2
  return 1
}

lvsnap_transports_setup() {
  lvsnap_transports_need_packages || { echo "transports.sh: package installation failed" >&2; return 1; }
  lvsnap_transports_pki || { echo "transports.sh: PKI setup failed" >&2; return 1; }
  lvsnap_transports_libvirtd_conf || { echo "transports.sh: libvirtd.conf update failed" >&2; return 1; }
  export LIBVIRTD_LISTEN=1
  lvsnap_transports_sshd
}

lvsnap_transports_setup || echo "transports.sh: remote-transport lab incomplete; transport tests will fail" >&2

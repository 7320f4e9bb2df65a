import os from "node:os";
import type { TransportFailure } from "./errors";

/**
 * What a failed TLS connection to libvirtd means and which file to fix, as pure text from the failure and the
 * credential paths libvirt's rules picked (tls.ts, locateTlsCredentials). No I/O.
 */

/** Where the client's credentials were taken from (libvirt's PKI layout). */
export interface TlsCredentialPaths {
  readonly ca: string;
  /** Loaded only if the file exists, as libvirt does. */
  readonly crl: string;
  readonly cert: string;
  readonly key: string;
}

/** The step the TLS dial was at when it failed. */
export type TlsStage =
  /** Building the TLS context from the credential files (before any byte was sent). */
  | "credentials"
  /** The TLS handshake (after the TCP connection, before the session was up). */
  | "handshake"
  /** Waiting for libvirtd's confirmation byte after the handshake. */
  | "confirmation";

export interface TlsFailureText {
  readonly failure: TransportFailure;
  readonly message: string;
}

// Node's verification codes for a server certificate that no CA in the client's CA file vouches for.
const UNTRUSTED_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
]);
const NOT_VALID_NOW_CODES = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);
// The server's alerts for a handshake that found no protocol version or cipher suite both sides accept: not
// about our certificate, which the server has not looked at yet.
const NO_COMMON_PARAMETERS_CODES = new Set([
  "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION",
  "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE",
]);

/**
 * Node names a failed verification of the server's chain by OpenSSL's X509_V_ERR_* name without the prefix
 * (INVALID_PURPOSE, CA_MD_TOO_WEAK, ...): neither one of Node's own `ERR_*` codes nor a socket errno.
 */
function isCertificateVerificationCode(code: string): boolean {
  return !code.startsWith("ERR_") && !Object.hasOwn(os.constants.errno, code);
}

const CLIENT_REFUSED =
  "server verification (of our certificate or IP address) failed: libvirtd refused our client certificate";

/**
 * Classifies a TLS dial failure and says what to do about it, naming the file concerned:
 * - the server's certificate: untrusted (the CA file), expired or not yet valid, revoked (the CRL file),
 *   issued for another name (the host in the URI), or refused for any other verification code (the CA file, or
 *   the CRL file for CRL codes);
 * - no TLS version or cipher suite in common with libvirtd (its tls_priority);
 * - our certificate refused by libvirtd (a TLS alert, or the connection closed instead of the confirmation
 *   byte): the client certificate and key, and what libvirtd checks them against;
 * - the connection closed during the handshake, or a peer that does not speak TLS: the port;
 * - unusable credential files (unreadable PEM, key not matching the certificate).
 * `code` is Node's error code (`error.code`), `detail` its message; `host` the host the URI names.
 */
export function describeTlsFailure(
  stage: TlsStage,
  code: string | undefined,
  detail: string,
  files: TlsCredentialPaths,
  host: string,
): TlsFailureText {
  const why = code === undefined ? detail : `${detail} (${code})`;
  const clientFiles = `client certificate ${files.cert} (key ${files.key})`;
  if (stage === "credentials") {
    return {
      failure: "credentials",
      message:
        `the TLS credentials cannot be used: ${why}: check that ${files.cert} and ${files.key} are PEM files ` +
        `and that the key belongs to the certificate, and that ${files.ca} is a PEM CA certificate`,
    };
  }
  if (code !== undefined && UNTRUSTED_CODES.has(code)) {
    return {
      failure: "server-certificate",
      message:
        `the server certificate was refused, no CA in ${files.ca} signed it: ${why}: put the CA certificate ` +
        "that signed libvirtd's server certificate there (or name a directory holding cacert.pem with " +
        "?pkipath=), or skip verification with no_verify=1",
    };
  }
  if (code !== undefined && NOT_VALID_NOW_CODES.has(code)) {
    return {
      failure: "server-certificate",
      message:
        `the server certificate was refused, it is not valid at this time: ${why}: renew libvirtd's server ` +
        "certificate (servercert.pem on the server), or correct the clock of the host that is wrong",
    };
  }
  if (code === "CERT_REVOKED") {
    return {
      failure: "server-certificate",
      message: `the server certificate was refused, ${files.crl} revokes it: ${why}: reissue libvirtd's server certificate`,
    };
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return {
      failure: "server-certificate",
      message:
        `the server certificate was refused, it is not issued for ${host}: ${why}: connect with a host name ` +
        "or address the certificate lists (its subject alternative names), reissue it with that name, or " +
        "skip verification with no_verify=1",
    };
  }
  if (code !== undefined && stage === "handshake" && isCertificateVerificationCode(code)) {
    // CRL_HAS_EXPIRED, UNABLE_TO_GET_CRL, UNABLE_TO_DECRYPT_CRL_SIGNATURE...: the CRL file is what to fix.
    const checkedAgainst = /(^|_)CRL(_|$)/.test(code)
      ? `checking it against the CRL file ${files.crl}`
      : `verified against the CA file ${files.ca}`;
    return {
      failure: "server-certificate",
      message:
        `our client refused the server's certificate, ${checkedAgainst}: ${why}: fix libvirtd's server ` +
        `certificate chain or the file named, or skip verification with no_verify=1`,
    };
  }
  if (code !== undefined && NO_COMMON_PARAMETERS_CODES.has(code)) {
    return {
      failure: "tls-parameters",
      message:
        `no TLS version or cipher in common with the server (libvirtd's tls_priority): ${why}: widen ` +
        "tls_priority in libvirtd.conf, or use a Node.js whose OpenSSL offers what it requires",
    };
  }
  if (
    stage === "confirmation" ||
    code?.startsWith("ERR_SSL_TLSV1_ALERT") ||
    code?.startsWith("ERR_SSL_SSLV3_ALERT")
  ) {
    return {
      failure: "client-certificate",
      message:
        `${CLIENT_REFUSED} ${files.cert} (${why}): it must be signed by a CA in libvirtd's cacert.pem ` +
        `(/etc/pki/CA/cacert.pem on the server) and match its tls_allowed_dn_list; check the ${clientFiles}`,
    };
  }
  if (code?.startsWith("ERR_SSL_") === true) {
    return {
      failure: "closed",
      message: `the peer does not speak TLS: ${why}: is this libvirtd's TLS port (listen_tls, 16514 by default)?`,
    };
  }
  return {
    failure: "closed",
    message:
      `the server closed the connection during the TLS handshake: ${why}: is this libvirtd's TLS port ` +
      `(listen_tls, 16514 by default)? If it is, libvirtd may have refused our ${clientFiles}`,
  };
}

import { describe, expect, it } from "vitest";
import {
  describeTlsFailure,
  type TlsCredentialPaths,
} from "../../../provider/libvirt/transports/tls-failures";

const files: TlsCredentialPaths = {
  ca: "/pki/cacert.pem",
  crl: "/pki/cacrl.pem",
  cert: "/pki/clientcert.pem",
  key: "/pki/clientkey.pem",
};

describe("describeTlsFailure: which failure, and which file to fix", () => {
  it.each([
    [
      "credentials",
      "ERR_OSSL_X509_KEY_VALUES_MISMATCH",
      "credentials",
      "/pki/clientcert.pem and /pki/clientkey.pem",
    ],
    [
      "handshake",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "server-certificate",
      "no CA in /pki/cacert.pem signed it",
    ],
    ["handshake", "SELF_SIGNED_CERT_IN_CHAIN", "server-certificate", "no CA in /pki/cacert.pem signed it"],
    ["handshake", "CERT_HAS_EXPIRED", "server-certificate", "renew libvirtd's server certificate"],
    ["handshake", "CERT_REVOKED", "server-certificate", "/pki/cacrl.pem revokes it"],
    ["handshake", "ERR_TLS_CERT_ALTNAME_INVALID", "server-certificate", "it is not issued for host.example"],
    [
      "handshake",
      "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
      "client-certificate",
      "libvirtd refused our client certificate /pki/clientcert.pem",
    ],
    [
      "confirmation",
      undefined,
      "client-certificate",
      "check the client certificate /pki/clientcert.pem (key /pki/clientkey.pem)",
    ],
    ...[
      "INVALID_PURPOSE",
      "EE_KEY_TOO_SMALL",
      "CA_KEY_TOO_SMALL",
      "CA_MD_TOO_WEAK",
      "CERT_UNTRUSTED",
      "INVALID_CA",
      "CERT_CHAIN_TOO_LONG",
    ].map(
      (code) =>
        [
          "handshake",
          code,
          "server-certificate",
          "refused the server's certificate, verified against the CA file /pki/cacert.pem",
        ] as const,
    ),
    ...["CRL_HAS_EXPIRED", "UNABLE_TO_GET_CRL", "CRL_NOT_YET_VALID"].map(
      (code) =>
        [
          "handshake",
          code,
          "server-certificate",
          "refused the server's certificate, checking it against the CRL file /pki/cacrl.pem",
        ] as const,
    ),
    ...["ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION", "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE"].map(
      (code) =>
        [
          "handshake",
          code,
          "tls-parameters",
          "no TLS version or cipher in common with the server (libvirtd's tls_priority)",
        ] as const,
    ),
    ["handshake", "ERR_SSL_WRONG_VERSION_NUMBER", "closed", "the peer does not speak TLS"],
    ["handshake", "EPIPE", "closed", "the server closed the connection during the TLS handshake"],
    ["handshake", "ECONNRESET", "closed", "the server closed the connection during the TLS handshake"],
  ] as const)("%s %s -> %s", (stage, code, failure, fix) => {
    const text = describeTlsFailure(stage, code, "node's words", files, "host.example");
    expect({ failure: text.failure, namesFix: text.message.includes(fix) }).toEqual({
      failure,
      namesFix: true,
    });
    expect(text.message).toContain(code === undefined ? "node's words" : `node's words (${code})`);
  });
});

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
    ["handshake", "ERR_SSL_WRONG_VERSION_NUMBER", "closed", "the peer does not speak TLS"],
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

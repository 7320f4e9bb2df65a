import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  dial,
  isLibvirtTransportError,
  type LibvirtTransportError,
} from "../../../provider/libvirt/transports";
import { parseLibvirtUri } from "../../../provider/libvirt/uri";
import { lab, requireLab, wrongNameTlsServer } from "./transport-support";

// TLS failures against the lab's libvirtd and throwaway PKI: each says which URI, what failed, and which file
// (CA certificate, client certificate and key, as libvirt lays them out) to fix.
const open: Duplex[] = [];
let scratch: string;

async function dialFailure(uri: string): Promise<LibvirtTransportError> {
  const error = await dial(parseLibvirtUri(uri), { connectTimeoutMs: 30_000 }).then(
    (stream) => {
      open.push(stream);
      return new Error(`dial of ${uri} succeeded`);
    },
    (caught: unknown) => caught,
  );
  if (!isLibvirtTransportError(error)) throw error;
  return error;
}

const tlsSummary = (error: LibvirtTransportError) => ({
  transport: error.transport,
  target: error.target,
  uri: error.uri,
  failure: error.failure,
});

beforeAll(() => {
  requireLab();
  scratch = mkdtempSync(path.join(os.tmpdir(), "lvsnap-transport-tls-"));
});
afterEach(() => {
  for (const stream of open.splice(0)) stream.destroy();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("TLS failures name the URI, the failure and the file to fix", () => {
  it("tls: a client certificate from a foreign CA is refused by libvirtd, naming our certificate", async () => {
    const uri = `qemu+tls://127.0.0.1/system?pkipath=${lab}/pki-foreign-client`;
    const error = await dialFailure(uri);
    expect(tlsSummary(error)).toEqual({
      transport: "tls",
      target: "127.0.0.1:16514",
      uri,
      failure: "client-certificate",
    });
    expect(error.message).toContain(`tls connection to 127.0.0.1:16514 for ${uri} failed: `);
    expect(error.message).toContain("server verification (of our certificate or IP address) failed");
    expect(error.message).toContain(`${lab}/pki-foreign-client/clientcert.pem`);
    expect(error.message).toContain(`(key ${lab}/pki-foreign-client/clientkey.pem)`);
  });

  it("tls: a wrong CA file (pkipath) refuses the server, naming that file and the fix", async () => {
    const uri = `qemu+tls://127.0.0.1/system?pkipath=${lab}/pki-foreign-ca`;
    const error = await dialFailure(uri);
    expect(tlsSummary(error)).toEqual({
      transport: "tls",
      target: "127.0.0.1:16514",
      uri,
      failure: "server-certificate",
    });
    expect(error.message).toContain(
      `the server certificate was refused, no CA in ${lab}/pki-foreign-ca/cacert.pem signed it: `,
    );
    expect(error.message).toContain("(UNABLE_TO_VERIFY_LEAF_SIGNATURE): put the CA certificate");
    expect(error.message).toContain("no_verify=1");
  });

  it("tls: a server certificate for another name is refused, unless no_verify=1", async () => {
    const server = await wrongNameTlsServer();
    try {
      const uri = `qemu+tls://127.0.0.1:${server.port}/system?pkipath=${lab}/pki-client`;
      const error = await dialFailure(uri);
      expect(tlsSummary(error)).toEqual({
        transport: "tls",
        target: `127.0.0.1:${server.port}`,
        uri,
        failure: "server-certificate",
      });
      expect(error.message).toContain("it is not issued for 127.0.0.1: ");
      expect(error.message).toContain("(ERR_TLS_CERT_ALTNAME_INVALID)");
      // With verification off the handshake passes; this server then closes without libvirt's confirmation.
      const unverified = await dialFailure(
        `qemu+tls://127.0.0.1:${server.port}/system?pkipath=${lab}/pki-client&no_verify=1`,
      );
      expect(unverified.failure).toBe("client-certificate");
    } finally {
      await server.close();
    }
  });

  it("tls: a port whose server closes during the handshake (libvirtd's plain TCP port)", async () => {
    const uri = `qemu+tls://127.0.0.1:16509/system?pkipath=${lab}/pki-client`;
    const error = await dialFailure(uri);
    expect(tlsSummary(error)).toEqual({
      transport: "tls",
      target: "127.0.0.1:16509",
      uri,
      failure: "closed",
    });
    expect(error.message).toContain("the server closed the connection during the TLS handshake");
    expect(error.message).toContain("is this libvirtd's TLS port (listen_tls, 16514 by default)?");
  });

  it("tls: a client key that does not belong to the certificate names both files", async () => {
    const pki = path.join(scratch, "pki-mismatched");
    mkdirSync(pki);
    copyFileSync(path.join(lab, "pki-client/cacert.pem"), path.join(pki, "cacert.pem"));
    copyFileSync(path.join(lab, "pki-client/clientcert.pem"), path.join(pki, "clientcert.pem"));
    copyFileSync(path.join(lab, "pki-foreign-client/clientkey.pem"), path.join(pki, "clientkey.pem"));
    const uri = `qemu+tls://127.0.0.1/system?pkipath=${pki}`;
    const error = await dialFailure(uri);
    expect(tlsSummary(error)).toEqual({
      transport: "tls",
      target: "127.0.0.1:16514",
      uri,
      failure: "credentials",
    });
    expect(error.message).toContain(
      `check that ${pki}/clientcert.pem and ${pki}/clientkey.pem are PEM files`,
    );
  });

  it("tls: a missing CA file in pkipath says which file libvirt's layout expects", async () => {
    const pki = path.join(scratch, "pki-empty");
    mkdirSync(pki);
    const error = await dialFailure(`qemu+tls://127.0.0.1/system?pkipath=${pki}`);
    expect({ failure: error.failure, message: error.message }).toEqual({
      failure: "credentials",
      message: expect.stringContaining(
        `cannot read the CA certificate ${pki}/cacert.pem (the URI's pkipath names its directory)`,
      ),
    });
  });
});

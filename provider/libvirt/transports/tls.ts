import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import type { LibvirtUri } from "../uri";
import { fromSocketError, LibvirtTransportError, type TransportFailure } from "./errors";
import { type DialOptions, dialStep } from "./socket";
import { hostPort } from "./tcp";
import { RecordPerMessageStream } from "./tls-records";

/** libvirtd's default TLS port (LIBVIRTD_TLS_PORT). */
export const DEFAULT_TLS_PORT = 16514;

/** libvirt's system-wide client PKI layout (src/rpc/virnettlsconfig.h). */
export const SYSTEM_PKI = {
  ca: "/etc/pki/CA/cacert.pem",
  crl: "/etc/pki/CA/cacrl.pem",
  cert: "/etc/pki/libvirt/clientcert.pem",
  key: "/etc/pki/libvirt/private/clientkey.pem",
} as const;

export interface TlsCredentialPaths {
  readonly ca: string;
  /** Loaded only if the file exists, as libvirt does. */
  readonly crl: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * Where the client's CA, CRL, certificate and key are, by libvirt's rules
 * (virNetTLSContextLocateCredentials): an explicit `pkipath` directory is used whether or not the files exist;
 * a non-root user's ~/.pki/libvirt is used file by file where present (certificate and key only as a pair),
 * falling back to the system paths. Pure apart from `exists`.
 */
export function locateTlsCredentials(
  pkipath: string | undefined,
  euid: number,
  homedir: string,
  exists: (path: string) => boolean = existsSync,
): TlsCredentialPaths {
  if (pkipath !== undefined) {
    return {
      ca: `${pkipath}/cacert.pem`,
      crl: `${pkipath}/cacrl.pem`,
      cert: `${pkipath}/clientcert.pem`,
      key: `${pkipath}/clientkey.pem`,
    };
  }
  if (euid === 0) return { ...SYSTEM_PKI };
  const user = `${homedir}/.pki/libvirt`;
  const pair = exists(`${user}/clientcert.pem`) && exists(`${user}/clientkey.pem`);
  return {
    ca: exists(`${user}/cacert.pem`) ? `${user}/cacert.pem` : SYSTEM_PKI.ca,
    crl: exists(`${user}/cacrl.pem`) ? `${user}/cacrl.pem` : SYSTEM_PKI.crl,
    cert: pair ? `${user}/clientcert.pem` : SYSTEM_PKI.cert,
    key: pair ? `${user}/clientkey.pem` : SYSTEM_PKI.key,
  };
}

// Node's verification codes for a server certificate we do not trust or that names another host.
const SERVER_CERT_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_REVOKED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Connects to libvirtd's TLS listener with libvirt's PKI layout, verifies the server certificate (chain and
 * host name) unless `no_verify=1`, and waits for libvirtd's confirmation byte. Resolves with a stream over the
 * TLS socket that writes one TLS record per RPC message (see tls-records.ts), ready for the RPC protocol; on
 * failure nothing is left open.
 *
 * Quirk: after the handshake libvirtd checks the client certificate itself and then sends one byte inside the
 * TLS session, `\1` if it accepts us; otherwise it closes the connection (src/rpc/virnetclient.c,
 * virNetClientSetTLSSession: "server verification (of our certificate or IP address) failed"). That byte is
 * not part of the RPC stream and is consumed here.
 */
export async function dialTls(
  uri: LibvirtUri,
  options: DialOptions,
  euid: number = process.geteuid?.() ?? 0,
  homedir: string = os.homedir(),
): Promise<Duplex> {
  const host = uri.host ?? "localhost";
  const port = uri.port ?? DEFAULT_TLS_PORT;
  const target = hostPort(host, port);
  const fail = (failure: TransportFailure, message: string, cause?: unknown): LibvirtTransportError =>
    new LibvirtTransportError({ transport: "tls", target, failure, message, cause });
  const paths = locateTlsCredentials(uri.params.pkipath, euid, homedir);
  const load = async (path: string, what: string, optional: boolean): Promise<Buffer | undefined> => {
    try {
      return await readFile(path);
    } catch (error) {
      if (optional) return undefined;
      throw fail("credentials", `cannot read the ${what} ${path}: ${(error as Error).message}`, error);
    }
  };
  const [ca, crl, cert, key] = await Promise.all([
    load(paths.ca, "CA certificate", uri.params.noVerify),
    load(paths.crl, "CA revocation list", true),
    load(paths.cert, "client certificate", false),
    load(paths.key, "client key", false),
  ]);

  // One deadline for TCP connect, handshake and confirmation: tls.connect opens the TCP connection itself.
  const secure = tls.connect({
    host,
    port,
    // SNI carries names only; Node still checks an IP against the certificate's IP SANs through `host`.
    ...(net.isIP(host) === 0 ? { servername: host } : {}),
    ...(ca === undefined ? {} : { ca }),
    ...(crl === undefined ? {} : { crl }),
    cert,
    key,
    rejectUnauthorized: !uri.params.noVerify,
    ...(uri.params.noVerify ? { checkServerIdentity: () => undefined } : {}),
  });
  secure.setNoDelay(true);
  const ready = new Promise<tls.TLSSocket>((resolve, reject) => {
    let connected = false;
    let handshaken = false;
    const cleanup = (): void => {
      secure.off("error", onError);
      secure.off("end", onEnd);
      secure.off("readable", onReadable);
    };
    const onError = (error: NodeJS.ErrnoException): void => {
      cleanup();
      const code = error.code ?? "";
      if (!connected) {
        reject(fromSocketError("tls", target, error));
      } else if (!handshaken && SERVER_CERT_CODES.has(code)) {
        reject(
          fail("server-certificate", `the server certificate was refused: ${error.message} (${code})`, error),
        );
      } else if (!handshaken && !code.startsWith("ERR_SSL_TLSV1_ALERT")) {
        reject(fail("closed", `TLS handshake failed: ${error.message}`, error));
      } else {
        reject(fail("client-certificate", clientRefused, error));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(fail("client-certificate", clientRefused));
    };
    const onReadable = (): void => {
      const confirmation = secure.read(1) as Buffer | null;
      if (confirmation === null) return;
      cleanup();
      if (confirmation[0] === 1) resolve(secure);
      else reject(fail("client-certificate", `${clientRefused} (confirmation byte ${confirmation[0]})`));
    };
    secure.on("error", onError);
    secure.once("connect", () => {
      connected = true;
    });
    secure.once("secureConnect", () => {
      handshaken = true;
      secure.on("end", onEnd);
      secure.on("readable", onReadable);
    });
  });
  await dialStep(
    "tls",
    target,
    options,
    ready,
    () => secure.destroy(),
    "no TCP connection, TLS handshake or libvirtd confirmation",
  );
  return new RecordPerMessageStream(secure);
}

const clientRefused =
  "server verification (of our certificate or IP address) failed: libvirtd refused our client certificate " +
  "(signed by a CA it does not trust, or not in its tls_allowed_dn_list)";

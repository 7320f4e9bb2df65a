import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { type LibvirtUri, redactUri } from "../uri";
import { fromSocketError, LibvirtTransportError, type TransportFailure } from "./errors";
import { type DialOptions, dialStep } from "./socket";
import { hostPort } from "./tcp";
import { describeTlsFailure, type TlsCredentialPaths, type TlsStage } from "./tls-failures";
import { RecordPerMessageStream } from "./tls-records";

export type { TlsCredentialPaths } from "./tls-failures";

/** libvirtd's default TLS port (LIBVIRTD_TLS_PORT). */
export const DEFAULT_TLS_PORT = 16514;

/** libvirt's system-wide client PKI layout (src/rpc/virnettlsconfig.h). */
export const SYSTEM_PKI = {
  ca: "/etc/pki/CA/cacert.pem",
  crl: "/etc/pki/CA/cacrl.pem",
  cert: "/etc/pki/libvirt/clientcert.pem",
  key: "/etc/pki/libvirt/private/clientkey.pem",
} as const;

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
  const redacted = redactUri(uri.uri);
  const paths = locateTlsCredentials(uri.params.pkipath, euid, homedir);
  const fail = (failure: TransportFailure, message: string, cause?: unknown): LibvirtTransportError =>
    new LibvirtTransportError({ transport: "tls", target, uri: redacted, failure, message, cause });
  const failed = (
    stage: TlsStage,
    error: NodeJS.ErrnoException | null,
    detail?: string,
  ): LibvirtTransportError => {
    const text = describeTlsFailure(stage, error?.code, detail ?? error?.message ?? "", paths, host);
    return fail(text.failure, text.message, error ?? undefined);
  };
  const load = async (path: string, what: string, optional: boolean): Promise<Buffer | undefined> => {
    try {
      return await readFile(path);
    } catch (error) {
      if (optional) return undefined;
      const where = uri.params.pkipath === undefined ? "" : " (the URI's pkipath names its directory)";
      const message = `cannot read the ${what} ${path}${where}: ${(error as Error).message}`;
      throw fail("credentials", message, error);
    }
  };
  // Read in parallel, report in a fixed order: when several files are missing, the error names the same
  // one (the CA first, as libvirt does) whichever read happened to fail first.
  const reads = await Promise.allSettled([
    load(paths.ca, "CA certificate", uri.params.noVerify),
    load(paths.crl, "CA revocation list", true),
    load(paths.cert, "client certificate", false),
    load(paths.key, "client key", false),
  ]);
  const [ca, crl, cert, key] = reads.map((read) => {
    if (read.status === "rejected") throw read.reason;
    return read.value;
  });

  // One deadline for TCP connect, handshake and confirmation: tls.connect opens the TCP connection itself.
  let secure: tls.TLSSocket;
  try {
    secure = tls.connect({
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
  } catch (error) {
    // A PEM file that does not parse, or a key that does not belong to the certificate.
    throw failed("credentials", error as NodeJS.ErrnoException);
  }
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
      if (!connected) reject(fromSocketError("tls", target, error, redacted));
      else reject(failed(handshaken ? "confirmation" : "handshake", error));
    };
    const onEnd = (): void => {
      cleanup();
      reject(failed("confirmation", null, "libvirtd closed the connection instead of confirming it"));
    };
    const onReadable = (): void => {
      const confirmation = secure.read(1) as Buffer | null;
      if (confirmation === null) return;
      cleanup();
      if (confirmation[0] === 1) resolve(secure);
      else reject(failed("confirmation", null, `libvirtd sent confirmation byte ${confirmation[0]}`));
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

import type { Duplex } from "node:stream";
import { type LibvirtUri, LibvirtUriError } from "../uri";
import type { DialOptions } from "./socket";
import { dialSsh } from "./ssh";
import { dialTcp } from "./tcp";
import { dialTls } from "./tls";
import { dialUnix } from "./unix";

export { isLibvirtTransportError, LibvirtTransportError, type TransportFailure } from "./errors";
export type { DialOptions } from "./socket";

/**
 * Opens the byte stream to the daemon named by a parsed URI, with the transport the URI selects. Resolves
 * once the stream is ready for the RPC protocol (connected; for TLS also handshaken and confirmed; for ssh
 * logged in with the remote proxy starting). Rejects with a LibvirtTransportError within
 * `connectTimeoutMs`; nothing is left open on failure. Each call opens a new stream.
 */
export function dial(uri: LibvirtUri, options: DialOptions): Promise<Duplex> {
  switch (uri.transport) {
    case "unix":
      return dialUnix(uri, options);
    case "tcp":
      return dialTcp(uri, options);
    case "tls":
      return dialTls(uri, options);
    case "ssh":
      return dialSsh(uri, options);
    default:
      // Unreachable for a URI from parseLibvirtUri; a hand-built one must not resolve with undefined.
      return Promise.reject(
        new LibvirtUriError(uri.uri, "transport", `unknown transport '${String(uri.transport)}'`),
      );
  }
}

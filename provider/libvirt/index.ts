/**
 * Public surface of the libvirt protocol client: the typed API contract, the connection that implements it
 * over an open byte stream, errors, and flag values.
 */
export * from "./api";
export { LibvirtConnection, type OpenOptions } from "./connection";
export {
  ErrorLevel,
  errorCodeName,
  errorDomainName,
  isLibvirtError,
  LibvirtError,
  type LibvirtErrorKind,
} from "./errors";
export * from "./flags";
export type { KeepaliveSettings } from "./keepalive";

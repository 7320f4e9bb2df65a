import { LibvirtError, protocolError } from "./errors";
import { LENGTH_WORD_BYTES, SEND_MESSAGE_MAX } from "./framing";
import { type XdrReader, XdrWriter } from "./xdr";

/**
 * libvirt's RPC message header (src/rpc/virnetprotocol.x) and the programs this client speaks: the remote
 * program (calls, replies, events) and the keepalive program (pings). No I/O.
 */

/** REMOTE_PROGRAM and its version (src/remote/remote_protocol.x). */
export const REMOTE_PROGRAM = 0x20008086;
export const REMOTE_PROTOCOL_VERSION = 1;
/** KEEPALIVE_PROGRAM ("keep") and its procedures (src/rpc/virkeepaliveprotocol.x). */
export const KEEPALIVE_PROGRAM = 0x6b656570;
export const KEEPALIVE_PROTOCOL_VERSION = 1;
export const KeepaliveProcedure = { PING: 1, PONG: 2 } as const;

/** virNetMessageType. */
export const MessageType = {
  CALL: 0,
  REPLY: 1,
  MESSAGE: 2,
  STREAM: 3,
  CALL_WITH_FDS: 4,
  REPLY_WITH_FDS: 5,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** virNetMessageStatus. */
export const MessageStatus = { OK: 0, ERROR: 1, CONTINUE: 2 } as const;
export type MessageStatus = (typeof MessageStatus)[keyof typeof MessageStatus];

export interface MessageHeader {
  readonly program: number;
  readonly version: number;
  readonly procedure: number;
  readonly type: number;
  readonly serial: number;
  readonly status: number;
}

/** Reads the 24-byte header at the start of a message body. */
export function readHeader(reader: XdrReader): MessageHeader {
  return {
    program: reader.uint(),
    version: reader.uint(),
    procedure: reader.int(),
    type: reader.int(),
    serial: reader.uint(),
    status: reader.int(),
  };
}

/**
 * Encodes whole messages (length word, header, payload) into one reusable writer. `begin` writes a placeholder
 * length and the header, the caller appends the payload, `finish` patches the length and returns a copy.
 */
export class MessageEncoder {
  private readonly writer = new XdrWriter(64 * 1024);

  /** Starts a message; returns the writer to append the payload to. */
  begin(
    program: number,
    version: number,
    procedure: number,
    type: number,
    serial: number,
    status: number,
  ): XdrWriter {
    const writer = this.writer;
    writer.reset();
    writer.uint(0);
    writer.uint(program);
    writer.uint(version);
    writer.int(procedure);
    writer.int(type);
    writer.uint(serial);
    writer.int(status);
    return writer;
  }

  /**
   * Completes the message begun last; throws a RangeError for a message over SEND_MESSAGE_MAX (the limit of
   * older daemons), so nothing is sent that a daemon would drop the connection for.
   */
  finish(): Buffer {
    const total = this.writer.length;
    if (total - LENGTH_WORD_BYTES > SEND_MESSAGE_MAX) {
      throw new RangeError(`message of ${total} bytes exceeds libvirt's limit of ${SEND_MESSAGE_MAX + 4}`);
    }
    this.writer.patchUint(0, total);
    return this.writer.toBuffer();
  }
}

/** Skips an optional remote domain / network in an error (unused by libvirt, but on the wire). */
function skipOptionalObject(reader: XdrReader, hasId: boolean): void {
  if (!reader.bool()) return;
  reader.string();
  reader.fixedOpaque(16);
  if (hasId) reader.int();
}

/**
 * Decodes a `remote_error` payload into a LibvirtError of kind `remote`, keeping every field the daemon sent.
 * A malformed payload is a protocol error.
 */
export function readRemoteError(reader: XdrReader, procedure: string): LibvirtError {
  const code = reader.int();
  const domain = reader.int();
  const message = reader.optionalString();
  const level = reader.int();
  skipOptionalObject(reader, true);
  const str1 = reader.optionalString();
  const str2 = reader.optionalString();
  const str3 = reader.optionalString();
  const int1 = reader.int();
  const int2 = reader.int();
  skipOptionalObject(reader, false);
  reader.expectEnd("an error reply");
  return new LibvirtError({
    kind: "remote",
    code,
    domain,
    message,
    level,
    str1,
    str2,
    str3,
    int1,
    int2,
    procedure,
  });
}

/** Rejects a message of a program or type this client never expects. */
export function unexpectedMessage(header: MessageHeader): LibvirtError {
  return protocolError(
    `unexpected message: program 0x${header.program.toString(16)} type ${header.type} procedure ${header.procedure}`,
  );
}

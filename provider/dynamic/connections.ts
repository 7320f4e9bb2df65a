import type { LibvirtConnection } from "../libvirt/connection";

/**
 * One libvirt connection per URI per plugin process, opened on first use and shared by every resource that
 * uses that URI (the plugin runs many operations at once on one provider object). A connection that closes
 * (daemon restart, network loss, keepalive timeout) is dropped, so the next operation opens a new one; a
 * failed open is not cached either. Operations that were using a connection when it closed fail with the
 * connection's error: they are not retried here, because the engine's own recovery on the next call is what
 * makes a half-done operation safe.
 */
export class ConnectionCache {
  private readonly connections = new Map<string, Promise<LibvirtConnection>>();

  constructor(private readonly open: (uri: string) => Promise<LibvirtConnection>) {}

  /** The open connection for `uri`, opening it if needed. Rejects with the open's error (not cached). */
  get(uri: string): Promise<LibvirtConnection> {
    const cached = this.connections.get(uri);
    if (cached !== undefined) return cached;
    const opening = this.open(uri);
    this.connections.set(uri, opening);
    const forget = () => {
      if (this.connections.get(uri) === opening) this.connections.delete(uri);
    };
    opening.then((connection) => connection.whenClosed.then(forget), forget);
    return opening;
  }

  /** Closes every connection (for tests and tools; the plugin process simply exits). */
  async closeAll(): Promise<void> {
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(all.map((opening) => opening.then((c) => c.close()).catch(() => undefined)));
  }
}

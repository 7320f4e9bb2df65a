"""Child of bench/plugin.ts: the parallelism baseline of the libvirt C library (python3-libvirt).

Usage: parallel-baseline.py URI SPEC_JSON COUNT PREFIX CONNECTIONS
SPEC_JSON is a JSON array of {"name": domain, "target": disk, "dir": directory for overlays}. CONNECTIONS is
"per-domain" (each thread opens a connection of its own) or "shared" (one connection that every thread uses at
once: the plugin's layout, where one connection per URI carries the calls of every domain, so libvirtd sees one
client and applies its per-client limits, such as max_client_requests, to all of them). Connections are opened
before the clock starts. One thread per domain: all threads create COUNT disk-only, atomic snapshots
PREFIX0..PREFIXn-1 of their domain one after the other (explicit overlay paths DIR/TARGET.PREFIXi.qcow2), wait
until every thread is done, then delete their snapshots oldest first with libvirt's own delete (snap.delete(0),
which merges each external snapshot's overlay away; libvirt >= 9.0 on a running domain). This is the work
bench/plugin.ts issues all at once, where the per-domain lock serializes the operations of one domain.

Prints one JSON line: {"wallMs", "createMs", "deleteMs"} (wall clock of both phases, of the creates, of the
deletes). Exits non-zero (with the error on stderr) if any thread failed; snapshots made before the failure
stay on the domains for the caller's cleanup.
"""

import json
import sys
import threading
import time
from xml.sax.saxutils import escape, quoteattr

import libvirt

DISK_ONLY = 1 << 4
ATOMIC = 1 << 7


def snapshot_xml(name: str, target: str, overlay: str) -> str:
    return (
        f"<domainsnapshot><name>{escape(name)}</name><memory snapshot='no'/><disks>"
        f"<disk name={quoteattr(target)} snapshot='external' type='file'>"
        f"<driver type='qcow2'/><source file={quoteattr(overlay)}/></disk></disks></domainsnapshot>"
    )


def main() -> None:
    uri, spec_json, count_arg, prefix, connections = sys.argv[1:6]
    count = int(count_arg)
    if connections not in ("per-domain", "shared"):
        sys.exit(f"CONNECTIONS must be per-domain or shared, not {connections!r}")
    domains = json.loads(spec_json)
    # A virConnect is thread safe and python3-libvirt releases the GIL during each call, so the threads'
    # calls on a shared connection are in flight at once, as the plugin's are on its one connection.
    shared = libvirt.open(uri) if connections == "shared" else None
    # The main thread passes each barrier too, to read the clock between the phases.
    ready = threading.Barrier(len(domains) + 1)
    created = threading.Barrier(len(domains) + 1)
    done = threading.Barrier(len(domains) + 1)
    errors: list[str] = []

    def worker(spec: dict) -> None:
        own = None
        try:
            own = libvirt.open(uri) if shared is None else None
            conn = shared if shared is not None else own
            dom = conn.lookupByName(spec["name"])
            names = [f"{prefix}{i}" for i in range(count)]
            ready.wait()
            for name in names:
                overlay = f"{spec['dir']}/{spec['target']}.{name}.qcow2"
                dom.snapshotCreateXML(snapshot_xml(name, spec["target"], overlay), DISK_ONLY | ATOMIC)
            created.wait()
            for name in names:
                dom.snapshotLookupByName(name, 0).delete(0)
            done.wait()
        except threading.BrokenBarrierError:
            pass
        except Exception as error:  # noqa: BLE001 - any failure is reported and breaks the barriers
            errors.append(f"{spec['name']}: {error}")
            for barrier in (ready, created, done):
                barrier.abort()
        finally:
            if own is not None:
                own.close()

    threads = [threading.Thread(target=worker, args=(spec,)) for spec in domains]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
        start = time.perf_counter()
        created.wait()
        middle = time.perf_counter()
        done.wait()
        end = time.perf_counter()
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join()
    if shared is not None:
        shared.close()
    if errors:
        print("; ".join(errors), file=sys.stderr)
        sys.exit(1)
    print(
        json.dumps(
            {
                "wallMs": (end - start) * 1000,
                "createMs": (middle - start) * 1000,
                "deleteMs": (end - middle) * 1000,
            }
        )
    )


if __name__ == "__main__":
    main()

"""Child of bench/create-snapshots.ts: disk-only snapshots through the libvirt C library (python3-libvirt).

Usage: create-snapshots.py URI DOMAIN TARGET IMAGE_DIR COUNT PREFIX
Creates COUNT disk-only, atomic snapshots PREFIX0..PREFIXn-1 of disk TARGET, each with an explicit overlay
path in IMAGE_DIR, over one connection, and prints one JSON object: {"ms": [per-create wall-clock ms]}.
"""

import json
import sys
import time
from xml.sax.saxutils import escape, quoteattr

import libvirt

DISK_ONLY = 1 << 4
ATOMIC = 1 << 7


def main() -> None:
    uri, name, target, image_dir, count, prefix = sys.argv[1:7]
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(name)
        times = []
        for i in range(int(count)):
            snap = f"{prefix}{i}"
            overlay = f"{image_dir}/{target}.{snap}.qcow2"
            xml = (
                f"<domainsnapshot><name>{escape(snap)}</name><memory snapshot='no'/><disks>"
                f"<disk name={quoteattr(target)} snapshot='external' type='file'>"
                f"<driver type='qcow2'/><source file={quoteattr(overlay)}/></disk></disks></domainsnapshot>"
            )
            start = time.perf_counter()
            dom.snapshotCreateXML(xml, DISK_ONLY | ATOMIC)
            times.append((time.perf_counter() - start) * 1000)
        print(json.dumps({"ms": times}))
    finally:
        conn.close()


if __name__ == "__main__":
    main()

"""The libvirt C library's side of bench/libvirt-client.ts, run through python3-libvirt on the same socket.

Usage: python3 bench/libvirt-client.py <uri> <domain-name> <calls> <opens>
Prints one JSON object: microseconds per sequential virDomainGetXMLDesc (wall clock, and CPU time of this
process), milliseconds per open+close.
"""

import json
import sys
import time

import libvirt


def main() -> None:
    uri, name, calls, opens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    conn = libvirt.open(uri)
    dom = conn.lookupByName(name)
    for _ in range(50):  # warm-up, as on the TypeScript side
        dom.XMLDesc(0)
    start = time.perf_counter()
    cpu_start = time.process_time()
    for _ in range(calls):
        dom.XMLDesc(0)
    seq_us = (time.perf_counter() - start) * 1e6 / calls
    seq_cpu_us = (time.process_time() - cpu_start) * 1e6 / calls
    conn.close()

    start = time.perf_counter()
    for _ in range(opens):
        libvirt.open(uri).close()
    open_close_ms = (time.perf_counter() - start) * 1e3 / opens
    print(json.dumps({"seqUsPerCall": seq_us, "seqCpuUsPerCall": seq_cpu_us, "openCloseMs": open_close_ms}))


if __name__ == "__main__":
    main()

import { describe, expect, it } from "vitest";
import { checkSnapshotInputs, SNAPSHOT_INPUT_DEFAULTS, UNKNOWN } from "../../../provider/dynamic/inputs";
import { redactUri } from "../../../provider/dynamic/uri";

const minimal = { domain: "web-1", name: "pre-deploy" };

describe("checkSnapshotInputs", () => {
  it("applies defaults and keeps every given input; __provider is left to the plugin", () => {
    const result = checkSnapshotInputs({
      ...minimal,
      description: "before 2.0",
      triggers: ["v2", { image: "sha256:abc" }],
      timeouts: { delete: 7200 },
      __provider: "exports.handler = ...",
    });
    expect(result).toEqual({
      inputs: {
        ...SNAPSHOT_INPUT_DEFAULTS,
        ...minimal,
        description: "before 2.0",
        triggers: ["v2", { image: "sha256:abc" }],
        timeouts: { delete: 7200 },
      },
      failures: [],
    });
  });

  it("drops undefined-valued keys, which the plugin cannot serialize", () => {
    expect(checkSnapshotInputs({ ...minimal, description: undefined, disks: undefined }).inputs).toEqual({
      ...SNAPSHOT_INPUT_DEFAULTS,
      ...minimal,
    });
  });

  const failing: [string, Record<string, unknown>, { property: string; reason: string }[]][] = [
    [
      "missing domain",
      { name: "s" },
      [
        {
          property: "domain",
          reason: "is required (got nothing); set it to the name or UUID of a libvirt domain",
        },
      ],
    ],
    [
      "slash in name",
      { domain: "d", name: "a/b" },
      [
        {
          property: "name",
          reason:
            "contains '/', which libvirt refuses in snapshot names (got \"a/b\"); use a name without '/' that does not start with '.'",
        },
      ],
    ],
    [
      "leading dot in name",
      { domain: "d", name: ".hidden" },
      [
        {
          property: "name",
          reason:
            "starts with '.', which libvirt refuses in snapshot names (got \".hidden\"); use a name without '/' that does not start with '.'",
        },
      ],
    ],
    [
      "quiesce outside the enum",
      { ...minimal, quiesce: "always" },
      [
        {
          property: "quiesce",
          reason:
            'Invalid option: expected one of "auto"|"required"|"off" (got "always"); use one of auto, required, off',
        },
      ],
    ],
    [
      "bad disk target in a list",
      { ...minimal, disks: ["vda", "../etc"] },
      [
        {
          property: "disks[1]",
          reason:
            'not a disk target name (got "../etc"); list disk targets as in the domain XML, e.g. ["vda"]',
        },
      ],
    ],
    [
      "nested timeout",
      { ...minimal, timeouts: { create: -1, merge: 5 } },
      [
        {
          property: "timeouts.create",
          reason: "must be positive (got -1); give { create, delete } in seconds",
        },
        { property: "timeouts.merge", reason: "unknown property (got 5); remove it (no such input)" },
      ],
    ],
    [
      "relative overlay directory",
      { ...minimal, overlayDir: "snaps/../x" },
      [
        {
          property: "overlayDir",
          reason:
            'is not an absolute path (got "snaps/../x"); use an absolute directory path such as /var/lib/libvirt/images/snapshots',
        },
        {
          property: "overlayDir",
          reason:
            "contains '.' or '..' (got \"snaps/../x\"); use an absolute directory path such as /var/lib/libvirt/images/snapshots",
        },
      ],
    ],
    [
      "fractional bandwidth",
      { ...minimal, bandwidth: 1.5 },
      [
        {
          property: "bandwidth",
          reason:
            "must be a whole number of bytes per second (got 1.5); give the merge speed limit in bytes per second, or leave it out for no limit",
        },
      ],
    ],
    [
      "live without memory",
      { ...minimal, live: true },
      [
        {
          property: "live",
          reason:
            "live: true applies only to memory snapshots (got memory: false); set memory: true or remove live",
        },
      ],
    ],
    [
      "quiesce required with memory",
      { ...minimal, memory: true, quiesce: "required" },
      [
        {
          property: "quiesce",
          reason:
            'quiesce: "required" cannot be combined with memory: true (libvirt quiesces disk-only snapshots); use quiesce: "auto" or "off", or memory: false',
        },
      ],
    ],
    [
      "disks and excludeDisks together",
      { ...minimal, disks: ["vda"], excludeDisks: ["vdb"] },
      [
        {
          property: "excludeDisks",
          reason:
            'disks and excludeDisks cannot both be set (got disks: ["vda"], excludeDisks: ["vdb"]); keep one of them',
        },
      ],
    ],
    [
      "unknown property",
      { ...minimal, memmory: true },
      [{ property: "memmory", reason: "unknown property (got true); remove it (no such input)" }],
    ],
  ];

  it.each(failing)("%s: each failure names the path, the value and the fix", (_label, news, expected) => {
    expect(checkSnapshotInputs(news).failures).toEqual(expected);
  });

  it("refuses a URI with a password without ever showing the password", () => {
    const { failures } = checkSnapshotInputs({ ...minimal, uri: "qemu+ssh://root:hunter2@host/system" });
    expect(failures).toEqual([
      {
        property: "uri",
        reason:
          'contains a credential, which would be stored in plain text (got "qemu+ssh://root:***@host/system"); use a URI such as qemu+ssh://user@host/system; put credentials in the stack config (pulumi config set --secret libvirt-snapshot:uri ...)',
      },
    ]);
    expect(JSON.stringify(failures)).not.toContain("hunter2");
  });

  it("refuses a URI the libvirt client would refuse, with the parser's reason", () => {
    const { failures } = checkSnapshotInputs({ ...minimal, uri: "qemu+libssh2://host/system" });
    expect(failures.map((f) => f.property)).toEqual(["uri"]);
    expect(failures[0]?.reason).toMatch(/libssh2/);
    expect(
      checkSnapshotInputs({ ...minimal, uri: "qemu+ssh://admin@host/system?keyfile=/k" }).failures,
    ).toEqual([]);
  });

  const unknownAnywhere: [string, Record<string, unknown>][] = [
    ["domain", { domain: UNKNOWN, name: "s" }],
    ["name", { domain: "d", name: UNKNOWN }],
    ["boolean", { ...minimal, memory: UNKNOWN, live: UNKNOWN }],
    ["enum", { ...minimal, quiesce: UNKNOWN, deleteStrategy: UNKNOWN }],
    ["whole list", { ...minimal, disks: UNKNOWN }],
    ["list element", { ...minimal, disks: ["vda", UNKNOWN] }],
    ["whole object", { ...minimal, timeouts: UNKNOWN }],
    ["object member", { ...minimal, timeouts: { create: UNKNOWN } }],
    ["number", { ...minimal, bandwidth: UNKNOWN }],
    ["uri", { ...minimal, uri: UNKNOWN }],
    ["triggers", { ...minimal, triggers: [UNKNOWN, { a: UNKNOWN }] }],
    ["both disk lists, one unknown", { ...minimal, disks: UNKNOWN, excludeDisks: ["vdb"] }],
    ["live with unknown memory", { ...minimal, memory: UNKNOWN, live: true }],
  ];

  it.each(unknownAnywhere)("an unknown %s never fails validation", (_label, news) => {
    const result = checkSnapshotInputs(news);
    expect(result.failures).toEqual([]);
    expect(result.inputs).toEqual({ ...SNAPSHOT_INPUT_DEFAULTS, ...news });
  });
});

describe("redactUri", () => {
  it.each([
    ["qemu:///system", "qemu:///system"],
    [
      "qemu+ssh://admin@hv1/system?keyfile=/home/a/.ssh/id",
      "qemu+ssh://admin@hv1/system?keyfile=/home/a/.ssh/id",
    ],
    ["qemu+ssh://admin:hunter2@hv1/system", "qemu+ssh://admin:***@hv1/system"],
    ["qemu+tcp://hv1/system?password=hunter2&no_verify=1", "qemu+tcp://hv1/system?password=***&no_verify=1"],
    ["esx://root@h/?no_verify=1;token=abc", "esx://root@h/?no_verify=1;token=***"],
  ])("%s -> %s", (uri, expected) => {
    expect(redactUri(uri)).toBe(expected);
  });
});

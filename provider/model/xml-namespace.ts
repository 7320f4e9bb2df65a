/**
 * The XML namespace of everything this project stores on the hypervisor: the journal of unfinished operations
 * and per-snapshot facts kept in the domain's `<metadata>` element. One constant, so readers and writers can
 * never disagree; the `/v1` suffix changes only with an incompatible layout (readers then accept both).
 */
export const PROJECT_XML_NAMESPACE = "https://pulumi-libvirt-snapshot.dev/xmlns/v1";

/** Element prefix used when writing under PROJECT_XML_NAMESPACE (libvirt requires one). */
export const PROJECT_XML_PREFIX = "lvsnap";

/**
 * The narrow views of the libvirt client that engine modules depend on. Each operation names exactly the calls
 * it makes, so tests can substitute a recording or failing fake, and a `LibvirtConnection` satisfies all of
 * them.
 */
import type { LibvirtApi } from "../libvirt/api";

/** Finding a domain by name or UUID and reading its state and XML. */
export type DomainReadPort = Pick<
  LibvirtApi,
  "domainLookupByName" | "domainLookupByUUID" | "domainGetXMLDesc" | "domainGetState"
>;

/** Reading snapshot metadata. */
export type SnapshotReadPort = Pick<
  LibvirtApi,
  "domainListAllSnapshots" | "domainSnapshotLookupByName" | "domainSnapshotGetXMLDesc"
>;

/** Reading and writing the project's element of the domain `<metadata>`. */
export type ProjectMetadataPort = Pick<
  LibvirtApi,
  "domainGetMetadata" | "domainSetMetadata" | "domainGetState"
>;

/** Reading which snapshot is libvirt's current one (the newest of the live branch). */
export type CurrentSnapshotPort = Pick<LibvirtApi, "domainSnapshotCurrent">;

/** Everything `listSnapshots` / `getSnapshot` call. */
export type InspectPort = DomainReadPort & SnapshotReadPort & CurrentSnapshotPort;

/** Everything `createSnapshot` calls. */
export type CreatePort = InspectPort & ProjectMetadataPort & Pick<LibvirtApi, "domainSnapshotCreateXML">;

/**
 * The package entry. Pulumi programs import the resource classes from here; the dynamic-provider plugin
 * loads `providerImplementations` from here through the serialized shims (see sdk/provider-shim.ts).
 */
export * from "../sdk";
export { providerImplementations } from "./dynamic/plugin-entry";

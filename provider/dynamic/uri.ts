import { defaultUri, isLibvirtUriError, parseLibvirtUri, redactUri } from "../libvirt/uri";

export { redactUri };

/**
 * Which libvirt URI an operation of the Pulumi layer uses, and how a URI is shown in outputs and messages.
 * Parsing and redaction are provider/libvirt/uri.ts's job (its errors redact too); this module only chooses.
 *
 * Precedence (first that is set wins): the resource's `uri` input, the stack config `libvirt-snapshot:uri`
 * (may be a secret), the plugin's `LIBVIRT_DEFAULT_URI`, then `qemu:///system`.
 */

/** The stack config key of the provider's default connection URI. */
export const URI_CONFIG_KEY = "libvirt-snapshot:uri";

/** The provider-wide default: the stack config value if set, else libvirt's own default rule. */
export function providerDefaultUri(configured: string | undefined, env: NodeJS.ProcessEnv): string {
  return defaultUri(configured?.trim(), env);
}

/** The URI one operation connects to: the resource's `uri` input if set, else the provider default. */
export function effectiveUri(resourceUri: string | null | undefined, providerDefault: string): string {
  return resourceUri !== undefined && resourceUri !== null && resourceUri !== ""
    ? resourceUri
    : providerDefault;
}

/**
 * Why `uri` cannot be used, in words that never show a credential, or null when it parses. Uses the libvirt
 * client's own parser, so check refuses exactly what a connection would refuse.
 */
export function uriProblem(uri: string): string | null {
  if (redactUri(uri) !== uri) return "contains a credential, which would be stored in plain text";
  try {
    parseLibvirtUri(uri);
    return null;
  } catch (error) {
    if (!isLibvirtUriError(error)) throw error;
    return error.message.replace(`${JSON.stringify(error.uri)}: `, "");
  }
}

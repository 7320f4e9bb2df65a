import { defaultUri, isLibvirtUriError, parseLibvirtUri } from "../libvirt/uri";

/**
 * Which libvirt URI an operation of the Pulumi layer uses, and how a URI is shown in outputs and messages.
 * Parsing itself is provider/libvirt/uri.ts's job; this module only chooses and redacts.
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

// A password in the user part (`//user:secret@`), and query parameters named like credentials.
const USERINFO_PASSWORD = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#@]*@/;
const SECRET_PARAMETER = /([?&;](?:password|passwd|pass|secret|token)=)[^&;#]*/gi;

/**
 * The URI with anything that looks like a credential masked as `***`, for outputs, logs and messages. A URI
 * without one is returned unchanged. The user name and `keyfile`/`pkipath` are kept: they say where and as
 * whom, not the secret itself. (The libvirt client accepts no password in a URI; this guards what users type.)
 */
export function redactUri(uri: string): string {
  return uri.replace(USERINFO_PASSWORD, "$1:***@").replace(SECRET_PARAMETER, "$1***");
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

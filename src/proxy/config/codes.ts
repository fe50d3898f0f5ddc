// Stable error codes for the sidecar's config layer (xDS resources → runtime config). A NACK's message carries
// the details; the code says which kind of problem it is. Tests assert them; never rename or reuse one.

export const ProxyConfigCodes = {
  /** A field or feature the Skein sidecar cannot honour (an unknown filter, an unsupported cluster type, ...). */
  UNSUPPORTED: "SKEIN_E_PROXY_CONFIG_UNSUPPORTED",
  /** A TLS setting the sidecar cannot honour (an unknown secret, cipher suites, OCSP, ...), or a non-TLS transport socket. */
  TLS: "SKEIN_E_PROXY_CONFIG_TLS",
  /** A value Envoy would reject too: missing required fields, duplicate names, the router not last, ... */
  INVALID: "SKEIN_E_PROXY_CONFIG_INVALID",
  /** A regular expression that is not RE2 or that JavaScript cannot run as RE2 would. */
  REGEX: "SKEIN_E_PROXY_CONFIG_REGEX",
  /** An embedded Any that does not decode as the type it names, or a resource of the wrong type. */
  DECODE: "SKEIN_E_PROXY_CONFIG_DECODE",
} as const;

export type ProxyConfigCode = (typeof ProxyConfigCodes)[keyof typeof ProxyConfigCodes];

// Stable error codes for the xDS protocol machinery (src/xds/). Tests assert them; never rename or reuse one.

export const XdsCodes = {
  /** An object given to pack() has a key that is neither a field nor a oneof of its message type. */
  UNKNOWN_FIELD: "SKEIN_E_XDS_UNKNOWN_FIELD",
  /** A field's value has the wrong JavaScript type (a string where a message belongs, a bad enum name, ...). */
  BAD_VALUE: "SKEIN_E_XDS_BAD_VALUE",
  /** A protobuf message type name that the bundled Envoy/xDS .proto files do not define. */
  UNKNOWN_TYPE: "SKEIN_E_XDS_UNKNOWN_TYPE",
  /** Bytes that do not decode as the message type their type URL names. */
  DECODE: "SKEIN_E_XDS_DECODE",
  /** A snapshot refers to an EDS or RDS resource it does not contain. */
  INCONSISTENT: "SKEIN_E_XDS_INCONSISTENT",
  /** A snapshot resource stored under a name other than its own `name` (or `clusterName`). */
  NAME_MISMATCH: "SKEIN_E_XDS_NAME_MISMATCH",
  /** The ADS server could not bind its address. */
  BIND: "SKEIN_E_XDS_BIND",
  /** An option given to an xDS constructor is invalid. */
  OPTION: "SKEIN_E_XDS_OPTION",
} as const;

export type XdsCode = (typeof XdsCodes)[keyof typeof XdsCodes];

/** An invalid spawn request, found before any process was started. */
export class NamespaceConfigError extends Error {
  override readonly name = 'NamespaceConfigError';
  readonly code = 'ENSCONFIG';
}

/** This kernel lacks a namespace kind that was asked for. */
export class UnsupportedNamespaceError extends Error {
  override readonly name = 'UnsupportedNamespaceError';
  readonly code = 'ENSUNSUPPORTED';
  constructor(readonly namespace: string) {
    super(`namespace "${namespace}" is not supported by this kernel (no /proc/self/ns/${namespace})`);
  }
}

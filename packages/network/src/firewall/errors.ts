/**
 * What went wrong, as a stable string to branch on:
 * - `ENFTMISSING`: the `nft` command is not installed (Debian package `nftables`).
 * - `ENFT`: `nft` refused a change or a listing (its message and the command it names are kept).
 * - `EFIREWALLINVAL`: a network, bridge, address, port or protocol given is malformed.
 * - `EPORTALLOCATED`: a host port is taken, by a process on the host or by another container.
 * - `ESYSCTL`: a kernel setting (`ip_forward`, `route_localnet`) could not be read or written.
 */
export type FirewallErrorCode = 'ENFTMISSING' | 'ENFT' | 'EFIREWALLINVAL' | 'EPORTALLOCATED' | 'ESYSCTL';

export interface FirewallErrorDetails {
  /** The nft command (one line of the batch) that failed. */
  command?: string;
  /** What nft printed on stderr. */
  stderr?: string;
  /** The file (sysctl) the error is about. */
  path?: string;
  cause?: unknown;
}

/** Every error thrown by the firewall. Branch on `code`, not only on `instanceof`. */
export class FirewallError extends Error {
  override readonly name = 'FirewallError';
  readonly code: FirewallErrorCode;
  readonly command: string | undefined;
  readonly stderr: string | undefined;
  readonly path: string | undefined;

  constructor(code: FirewallErrorCode, message: string, details: FirewallErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.command = details.command;
    this.stderr = details.stderr;
    this.path = details.path;
  }
}

/** True for a FirewallError (also one from another copy of this package), optionally of one code. */
export function isFirewallError(error: unknown, code?: FirewallErrorCode): error is FirewallError {
  return (
    error instanceof Error &&
    error.name === 'FirewallError' &&
    (code === undefined || (error as FirewallError).code === code)
  );
}

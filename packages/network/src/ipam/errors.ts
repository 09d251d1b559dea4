/**
 * What went wrong, as a stable string to branch on:
 * - `EIPAMINVAL`: a subnet, address, gateway, network name or container id is malformed.
 * - `EIPAMOVERLAP`: a new pool's subnet overlaps an existing pool's.
 * - `EIPAMEXISTS`: the network already has an address pool.
 * - `EIPAMNOPOOL`: the network has no address pool.
 * - `EIPAMRANGE`: a requested address is outside the network's subnet.
 * - `EIPAMINUSE`: a requested address is taken (by a container, or as gateway, network or broadcast address).
 * - `EIPAMCONFLICT`: the container already holds another address on the network.
 * - `EIPAMFULL`: every address of the pool is handed out.
 * - `EIPAMNOSUBNET`: none of the default subnets is free.
 * - `EIPAMBUSY`: a pool still holding addresses was to be removed.
 * - `EIPAMCORRUPT`: a pool file cannot be understood (the path says which).
 * - `EIPAMLOCKED`: another process held the pools' lock for too long.
 * - `EIPAMIO`: reading or writing a pool file failed.
 */
export type IpamErrorCode =
  | 'EIPAMINVAL'
  | 'EIPAMOVERLAP'
  | 'EIPAMEXISTS'
  | 'EIPAMNOPOOL'
  | 'EIPAMRANGE'
  | 'EIPAMINUSE'
  | 'EIPAMCONFLICT'
  | 'EIPAMFULL'
  | 'EIPAMNOSUBNET'
  | 'EIPAMBUSY'
  | 'EIPAMCORRUPT'
  | 'EIPAMLOCKED'
  | 'EIPAMIO';

export interface IpamErrorDetails {
  /** The network the error is about. */
  network?: string;
  /** The address or subnet the error is about. */
  address?: string;
  /** The file the error is about. */
  path?: string;
  cause?: unknown;
}

/** Every error thrown by the address pools. Branch on `code`, not only on `instanceof`. */
export class IpamError extends Error {
  override readonly name = 'IpamError';
  readonly code: IpamErrorCode;
  readonly network: string | undefined;
  readonly address: string | undefined;
  readonly path: string | undefined;

  constructor(code: IpamErrorCode, message: string, details: IpamErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.network = details.network;
    this.address = details.address;
    this.path = details.path;
  }
}

/** True for an IpamError (also one from another copy of this package), optionally of one code. */
export function isIpamError(error: unknown, code?: IpamErrorCode): error is IpamError {
  return (
    error instanceof Error &&
    error.name === 'IpamError' &&
    (code === undefined || (error as IpamError).code === code)
  );
}

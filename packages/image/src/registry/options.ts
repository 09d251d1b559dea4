/** The options and progress events of pull, push and login, and the client they make. */
import { RegistryClient } from './client.js';
import { defaultAuthFile, getCredentials } from './credentials.js';
import type { Timeouts } from './transport.js';

export interface RegistryOptions {
  /** docker-compatible config.json (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json; box's CLI will pass its own). */
  authFile?: string;
  /** Registries (host[:port]) spoken to over plain http; localhost/127.0.0.1/[::1] always are. Others use https with the system CAs. */
  insecureRegistries?: string[];
  /** Parallel layer downloads/uploads (default 3). */
  concurrency?: number;
  signal?: AbortSignal;
  /** How long to wait for a response's headers, and for the next bytes of a body (default 30 s each). */
  timeouts?: Timeouts;
  /** Progress, see ProgressEvent. */
  onProgress?: (event: ProgressEvent) => void;
}

export type LayerStatus =
  | 'waiting'
  | 'exists'
  | 'downloading'
  | 'verifying'
  | 'extracting'
  | 'complete'
  | 'pushing'
  | 'pushed'
  | 'mounted'
  | 'retrying';

/**
 * Progress of a pull or push. A `downloading` event's `current` counts the bytes of the blob on
 * disk, so the first one of a resumed download starts where the interrupted one stopped.
 */
export type ProgressEvent =
  | { type: 'resolved'; reference: string; digest: string; layers: { digest: string; size: number }[] }
  | { type: 'layer'; digest: string; status: LayerStatus; current?: number; total?: number }
  | { type: 'done'; reference: string; digest: string; status: 'downloaded' | 'up to date' | 'pushed' };

/** A client for `domain` with the options' credentials, insecure registries and signal. */
export function clientFor(
  domain: string,
  options: RegistryOptions,
  onRetry?: (error: unknown) => void,
): RegistryClient {
  const authFile = options.authFile ?? defaultAuthFile();
  return new RegistryClient(domain, {
    insecureRegistries: options.insecureRegistries,
    signal: options.signal,
    timeouts: options.timeouts,
    credentials: () => getCredentials(domain, authFile),
    onRetry,
  });
}

/** Runs `fn` over `items` with at most `limit` running at once; the first failure stops new starts. */
export async function eachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const errors: unknown[] = [];
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failed = true;
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (errors.length > 0) throw errors[0];
}

/**
 * HTTP for the registry client: Node's built-in fetch (undici) with the timeouts fetch lacks, and
 * network failures turned into one clear `EIMAGE_REGISTRY` error.
 *
 * Threat model: the registry (and anything between us and it over plain http) is hostile. Bodies
 * are read as streams with a byte limit, a stalled body is aborted instead of hanging the pull,
 * and nothing read here is trusted by the callers before they verify it.
 */
import { ImageError, isImageError } from '../errors.js';

/** How long to wait for response headers, and for the next chunk of a body. */
export interface Timeouts {
  headersMs: number;
  stallMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { headersMs: 30_000, stallMs: 30_000 };

/**
 * Errors worth another attempt: 5xx, 429, connections dropped mid-way, stalled bodies. Kept in a
 * WeakSet rather than on the error so that the public error shape stays ImageError's.
 */
const transient = new WeakSet<Error>();

export function markTransient<E extends Error>(error: E): E {
  transient.add(error);
  return error;
}

export function isTransient(error: unknown): boolean {
  return error instanceof Error && transient.has(error);
}

/** True for errors from a connection that never got established (nothing is listening, no route, no name). */
const unreachable = new WeakSet<Error>();
export function isUnreachable(error: unknown): boolean {
  return error instanceof Error && unreachable.has(error);
}

const NETWORK_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'unknown host (name resolution failed)',
  ENETUNREACH: 'network is unreachable',
  EHOSTUNREACH: 'host is unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  UND_ERR_SOCKET: 'connection closed by the registry',
  ETIMEDOUT: 'timed out',
};
const NOT_CONNECTED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function causeCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in NETWORK_WORDS) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

class Timeout extends Error {
  constructor(readonly what: string) {
    super(what);
  }
}

/** Turns a fetch/body failure into an ImageError naming the request. */
export function networkError(error: unknown, method: string, url: string, signal?: AbortSignal): ImageError {
  if (isImageError(error)) return error;
  if (signal?.aborted) {
    return new ImageError('EIMAGE_REGISTRY', `${method} ${url} was aborted`, { url, cause: signal.reason });
  }
  const reason = (error as { cause?: unknown })?.cause ?? error;
  if (reason instanceof Timeout || error instanceof Timeout) {
    const what = (reason instanceof Timeout ? reason : (error as Timeout)).what;
    return markTransient(
      new ImageError('EIMAGE_REGISTRY', `${method} ${url}: ${what}`, { url, cause: error }),
    );
  }
  const code = causeCode(error);
  const host = safeHost(url);
  if (code !== undefined && NOT_CONNECTED.has(code)) {
    const e = new ImageError(
      'EIMAGE_REGISTRY',
      `no network: cannot reach the registry ${host} (${NETWORK_WORDS[code]}) for ${method} ${url}`,
      { url, cause: error },
    );
    unreachable.add(e);
    return markTransient(e);
  }
  const words = code !== undefined ? NETWORK_WORDS[code] : ((error as Error)?.message ?? String(error));
  return markTransient(
    new ImageError('EIMAGE_REGISTRY', `${method} ${url} failed: ${words}`, { url, cause: error }),
  );
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** A response whose body is read through `chunks()` (or `bytes()`) with the stall timeout. */
export interface HttpResponse {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  /** The body, chunk by chunk; throws `EIMAGE_TOO_LARGE` past `limit` bytes. */
  chunks(limit?: number, what?: string): AsyncGenerator<Uint8Array>;
  /** The whole body, at most `limit` bytes (for manifests, configs, tokens, error documents). */
  bytes(limit: number, what: string): Promise<Buffer>;
  /** Drops the body and frees the connection. */
  discard(): Promise<void>;
}

export interface SendInit {
  method: string;
  headers?: Record<string, string>;
  body?: Buffer | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
  timeouts?: Timeouts;
}

/**
 * Sends one request. Redirects are followed by fetch, which drops `Authorization` when one leads
 * to another origin (blob storage behind a registry): credentials never leave the registry's host.
 */
export async function send(url: string, init: SendInit): Promise<HttpResponse> {
  const timeouts = init.timeouts ?? DEFAULT_TIMEOUTS;
  const controller = new AbortController();
  const onAbort = () => controller.abort(init.signal?.reason);
  if (init.signal?.aborted) onAbort();
  init.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number, what: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Timeout(what)), ms);
  };
  const finish = () => {
    clearTimeout(timer);
    init.signal?.removeEventListener('abort', onAbort);
  };
  arm(timeouts.headersMs, `no response within ${timeouts.headersMs / 1000} s`);
  let response: Response;
  try {
    const body = init.body;
    response = await fetch(url, {
      method: init.method,
      headers: init.headers,
      body: body as RequestInit['body'],
      redirect: 'follow',
      signal: controller.signal,
      // A streamed request body (uploads) needs half-duplex in undici.
      ...(body !== undefined && !Buffer.isBuffer(body) ? { duplex: 'half' } : {}),
    } as RequestInit);
  } catch (error) {
    finish();
    throw networkError(
      controller.signal.reason instanceof Timeout ? controller.signal.reason : error,
      init.method,
      url,
      init.signal,
    );
  }
  let done = false;
  const close = async () => {
    if (done) return;
    done = true;
    finish();
    await response.body?.cancel().catch(() => undefined);
  };
  const res: HttpResponse = {
    method: init.method,
    url: response.url || url,
    status: response.status,
    headers: response.headers,
    async *chunks(limit = Number.POSITIVE_INFINITY, what = 'response body') {
      const declared = Number(response.headers.get('content-length') ?? Number.NaN);
      if (Number.isFinite(declared) && declared > limit) {
        await close();
        throw new ImageError(
          'EIMAGE_TOO_LARGE',
          `${what} from ${url} is ${declared} bytes, more than the limit of ${limit}`,
          {
            url,
          },
        );
      }
      if (!response.body) {
        await close();
        return;
      }
      const reader = response.body.getReader();
      let total = 0;
      try {
        for (;;) {
          arm(timeouts.stallMs, `the body stalled (nothing received for ${timeouts.stallMs / 1000} s)`);
          let step: Awaited<ReturnType<typeof reader.read>>;
          try {
            step = await reader.read();
          } catch (error) {
            throw networkError(
              controller.signal.reason instanceof Timeout ? controller.signal.reason : error,
              init.method,
              url,
              init.signal,
            );
          }
          clearTimeout(timer);
          if (step.done) break;
          total += step.value.length;
          if (total > limit) {
            throw new ImageError(
              'EIMAGE_TOO_LARGE',
              `${what} from ${url} is larger than the limit of ${limit} bytes`,
              {
                url,
              },
            );
          }
          yield step.value;
        }
      } finally {
        reader.releaseLock();
        await close();
      }
    },
    async bytes(limit, what) {
      const parts: Uint8Array[] = [];
      for await (const chunk of res.chunks(limit, what)) parts.push(chunk);
      return Buffer.concat(parts);
    },
    discard: close,
  };
  return res;
}

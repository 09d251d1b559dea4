/**
 * One registry host spoken to for one operation: URLs, authentication, retries with backoff on
 * 5xx/429 and dropped connections, and errors that name the request and quote the registry's
 * error document (bounded, control characters removed).
 */
import { ImageError } from '../errors.js';
import { Authenticator } from './auth.js';
import type { Credentials } from './credentials.js';
import { baseUrl, wireHost } from './hosts.js';
import {
  DEFAULT_TIMEOUTS,
  type HttpResponse,
  isTransient,
  isUnreachable,
  markTransient,
  send,
  type Timeouts,
} from './transport.js';

export interface ClientOptions {
  insecureRegistries?: readonly string[];
  signal?: AbortSignal;
  timeouts?: Timeouts;
  credentials: () => Promise<Credentials | undefined>;
  /** Called before a retry, with the error that caused it. */
  onRetry?: (error: unknown, attempt: number) => void;
  /** Attempts per request (default 4: three retries). */
  attempts?: number;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** A factory, so that a retry sends the body again from its start. */
  body?: () => Buffer | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
  scopes: readonly string[];
  attempts?: number;
}

const ERROR_DOC_LIMIT = 64 * 1024;

/** Backoff before retry `attempt` (0-based): 200 ms, 400 ms, 800 ms… up to 5 s, with jitter. */
export function backoffMs(attempt: number): number {
  return Math.min(5000, 200 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The registry's error document (`{"errors":[{"code","message"}]}`) as a short, printable string. */
export async function errorText(res: HttpResponse): Promise<string> {
  let body: Buffer;
  try {
    body = await res.bytes(ERROR_DOC_LIMIT, 'error document');
  } catch {
    return '';
  }
  let text = body.toString('utf8');
  try {
    const doc = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    if (Array.isArray(doc.errors)) {
      text = doc.errors
        .map((e) => [e.code, e.message].filter((x) => typeof x === 'string').join(': '))
        .join('; ');
    }
  } catch {}
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  text = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export class RegistryClient {
  /** host[:port] on the wire. */
  readonly host: string;
  /** `http(s)://host[:port]`. */
  readonly base: string;
  readonly auth: Authenticator;
  /** Set once the registry answered anything: a later refused connection is then a restart worth retrying. */
  contacted = false;

  constructor(
    readonly domain: string,
    readonly options: ClientOptions,
  ) {
    this.host = wireHost(domain);
    this.base = baseUrl(this.host, options.insecureRegistries);
    this.auth = new Authenticator({
      host: this.host,
      credentials: options.credentials,
      signal: options.signal,
      timeouts: options.timeouts,
      insecureRegistries: options.insecureRegistries,
    });
  }

  /** An absolute URL for an API path, or a `Location` the registry returned (same origin only). */
  url(pathOrLocation: string): string {
    const url = new URL(pathOrLocation, this.base);
    // An upload location on another origin would receive our Authorization header: refuse it.
    if (url.origin !== new URL(this.base).origin) {
      throw new ImageError(
        'EIMAGE_REGISTRY',
        `the registry ${this.host} sent a location on another host: ${url.origin}`,
        {
          url: url.toString(),
        },
      );
    }
    return url.toString();
  }

  /**
   * Sends a request with authentication and retries. 401 and 403 become `EIMAGE_AUTH`, 5xx and 429
   * (after the retries) `EIMAGE_REGISTRY`; other statuses are for the caller to judge.
   */
  async request(method: string, pathOrUrl: string, options: RequestOptions): Promise<HttpResponse> {
    const url = this.url(pathOrUrl);
    const attempts = options.attempts ?? this.options.attempts ?? 4;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(method, url, options);
      } catch (error) {
        const last = attempt + 1 >= attempts;
        // Nothing listening before we ever spoke to it: a wrong address, not a hiccup. Fail fast.
        if (
          !isTransient(error) ||
          last ||
          (isUnreachable(error) && !this.contacted) ||
          this.options.signal?.aborted
        ) {
          throw error;
        }
        this.options.onRetry?.(error, attempt);
        await sleep(backoffMs(attempt), this.options.signal);
      }
    }
  }

  async #once(method: string, url: string, options: RequestOptions): Promise<HttpResponse> {
    for (let authTries = 0; ; authTries++) {
      const authorization = await this.auth.authorization(options.scopes);
      const res = await send(url, {
        method,
        headers: { ...options.headers, ...(authorization ? { Authorization: authorization } : {}) },
        body: options.body?.(),
        signal: this.options.signal,
        timeouts: this.options.timeouts ?? DEFAULT_TIMEOUTS,
      });
      this.contacted = true;
      if (res.status === 401) {
        const challenge = res.headers.get('www-authenticate');
        const text = await errorText(res);
        if (authTries < 2 && (await this.auth.unauthorized(challenge, options.scopes, authorization)))
          continue;
        const anonymous = !(await this.auth.hasCredentials());
        throw new ImageError(
          'EIMAGE_AUTH',
          `${method} ${url}: unauthorized (401)${text ? `: ${text}` : ''}${
            anonymous
              ? `; no credentials for ${this.host}: log in first`
              : `; the credentials for ${this.host} were refused`
          }`,
          { url, status: 401 },
        );
      }
      if (res.status === 403) {
        const text = await errorText(res);
        throw new ImageError(
          'EIMAGE_AUTH',
          `${method} ${url}: access denied (403)${text ? `: ${text}` : ''}`,
          {
            url,
            status: 403,
          },
        );
      }
      if (res.status >= 500 || res.status === 429) {
        const text = await errorText(res);
        throw markTransient(
          new ImageError(
            'EIMAGE_REGISTRY',
            `${method} ${url}: the registry answered ${res.status}${text ? `: ${text}` : ''}`,
            {
              url,
              status: res.status,
            },
          ),
        );
      }
      return res;
    }
  }

  /** The error for a status the caller did not expect; 404 is `EIMAGE_NOT_FOUND`. */
  async unexpected(res: HttpResponse, what: string): Promise<ImageError> {
    const text = await errorText(res);
    const code = res.status === 404 ? 'EIMAGE_NOT_FOUND' : 'EIMAGE_REGISTRY';
    const why = res.status === 404 ? 'not found' : `unexpected HTTP ${res.status}`;
    return new ImageError(code, `${what}: ${why} (${res.method} ${res.url})${text ? `: ${text}` : ''}`, {
      url: res.url,
      status: res.status,
    });
  }
}

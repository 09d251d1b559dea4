/**
 * Registry authentication: the `WWW-Authenticate` challenge of a 401, then HTTP basic or a bearer
 * token fetched from the challenge's realm (docker's token protocol: GET realm?service=…&scope=…,
 * with the user's credentials as basic auth when there are some). Tokens are cached per scope set
 * and reused for every request of an operation; one that is refused (401) is dropped and fetched
 * again once.
 *
 * Threat model: the challenge comes from the registry, so it decides where the token request goes
 * (as in docker). Credentials are sent to a realm only over https, or to the registry's own host,
 * or to loopback; a token is only sent back to the registry it was fetched for, and it must be a
 * plain printable string (no header injection).
 */
import { ImageError } from '../errors.js';
import type { Credentials } from './credentials.js';
import { send, type Timeouts } from './transport.js';

export interface Challenge {
  /** Lowercase scheme: `bearer`, `basic`. */
  scheme: string;
  /** Lowercase parameter names: `realm`, `service`, `scope`, `error`. */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/** Parses a `WWW-Authenticate` header (one or more challenges, RFC 7235). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (chars: string) => {
    while (i < n && chars.includes(header[i]!)) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && TOKEN_CHAR.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skip(' \t,');
    const scheme = token();
    if (scheme === '') break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      const mark = i;
      skip(' \t,');
      const name = token();
      skip(' \t');
      if (name === '' || header[i] !== '=') {
        i = mark; // the next challenge's scheme
        if (name === '') skip(' \t,');
        break;
      }
      i++;
      skip(' \t');
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
        value = header.slice(start, i);
      }
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return out;
}

/** `repository:<path>:<actions>`. */
export function repositoryScope(path: string, actions: string): string {
  return `repository:${path}:${actions}`;
}

const PRINTABLE = /^[\x21-\x7e]+$/;
const TOKEN_LIMIT = 1 << 20;

export interface AuthenticatorOptions {
  /** The registry's host[:port], to which tokens are sent back. */
  host: string;
  credentials: () => Promise<Credentials | undefined>;
  signal?: AbortSignal;
  timeouts?: Timeouts;
  /** Hosts that may get credentials over plain http (loopback always may). */
  insecureRegistries?: readonly string[];
}

interface CachedToken {
  value: string;
  expires: number;
}

/** One registry's authentication state for one operation (pull, push, login). */
export class Authenticator {
  #challenge: Challenge | undefined;
  #tokens = new Map<string, CachedToken>();
  #credentials: Credentials | undefined | null = null;
  /** How many tokens were fetched (for tests and progress). */
  tokenRequests = 0;

  constructor(private readonly options: AuthenticatorOptions) {}

  async #creds(): Promise<Credentials | undefined> {
    if (this.#credentials === null) this.#credentials = await this.options.credentials();
    return this.#credentials;
  }

  /** Whether credentials are known for this registry (for error messages). */
  async hasCredentials(): Promise<boolean> {
    return (await this.#creds()) !== undefined;
  }

  /** The `Authorization` header for a request needing `scopes`, from what is known so far. */
  async authorization(scopes: readonly string[]): Promise<string | undefined> {
    const challenge = this.#challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const creds = await this.#creds();
      return creds && basic(creds);
    }
    if (challenge.scheme !== 'bearer') return undefined;
    const key = [...scopes].sort().join(' ');
    const cached = this.#tokens.get(key);
    if (cached && cached.expires > Date.now()) return `Bearer ${cached.value}`;
    const token = await this.#fetchToken(challenge, scopes);
    this.#tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  /**
   * After a 401 to a request sent with `sent`: learns the challenge, drops a token that was
   * refused, and says whether another attempt can succeed.
   */
  async unauthorized(
    header: string | null,
    scopes: readonly string[],
    sent: string | undefined,
  ): Promise<boolean> {
    const challenges = parseChallenges(header ?? '');
    const challenge =
      challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!challenge) return false;
    const before = this.#challenge;
    this.#challenge = challenge;
    if (challenge.scheme === 'basic') {
      // Basic credentials that were sent and refused will be refused again.
      return sent === undefined && (await this.#creds()) !== undefined;
    }
    if (challenge.scheme !== 'bearer') return false;
    if (sent?.startsWith('Bearer ')) {
      const key = [...scopes].sort().join(' ');
      this.#tokens.delete(key);
    }
    return sent === undefined || before?.scheme !== 'bearer' || sent.startsWith('Bearer ');
  }

  async #fetchToken(challenge: Challenge, scopes: readonly string[]): Promise<CachedToken> {
    const realm = challenge.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)');
    } catch (error) {
      throw new ImageError(
        'EIMAGE_AUTH',
        `the registry ${this.options.host} sent a token realm "${realm}" that is not an http(s) URL`,
        {
          cause: error,
        },
      );
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    const wanted = new Set(scopes);
    // The scope the registry asked for in the challenge, e.g. a mount's source repository.
    for (const scope of (challenge.params.scope ?? '').split(' ')) if (scope) wanted.add(scope);
    for (const scope of wanted) url.searchParams.append('scope', scope);
    const creds = await this.#creds();
    const headers: Record<string, string> = {};
    if (creds && this.#mayReceiveCredentials(url)) {
      headers.Authorization = basic(creds);
      url.searchParams.set('account', creds.username);
    }
    this.tokenRequests++;
    const res = await send(url.toString(), {
      method: 'GET',
      headers,
      signal: this.options.signal,
      timeouts: this.options.timeouts,
    });
    const what = `the token from ${url.origin}${url.pathname}`;
    if (res.status === 401 || res.status === 403) {
      await res.discard();
      throw new ImageError(
        'EIMAGE_AUTH',
        creds
          ? `the registry ${this.options.host} refused the credentials of ${creds.username} (token server answered ${res.status})`
          : `the registry ${this.options.host} needs credentials (token server answered ${res.status}); log in first`,
        { url: url.toString(), status: res.status },
      );
    }
    if (res.status !== 200) {
      await res.discard();
      throw new ImageError('EIMAGE_AUTH', `fetching ${what} failed with HTTP ${res.status}`, {
        url: url.toString(),
        status: res.status,
      });
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse((await res.bytes(TOKEN_LIMIT, what)).toString('utf8'));
    } catch (error) {
      throw new ImageError('EIMAGE_AUTH', `${what} is not JSON`, { url: url.toString(), cause: error });
    }
    const value = typeof doc.token === 'string' && doc.token ? doc.token : doc.access_token;
    if (typeof value !== 'string' || !PRINTABLE.test(value)) {
      throw new ImageError('EIMAGE_AUTH', `${what} has no usable token`, { url: url.toString() });
    }
    // docker's default lifetime is 60 s; keep a margin so a token does not expire mid-request.
    const seconds =
      typeof doc.expires_in === 'number' && doc.expires_in > 0 ? Math.min(doc.expires_in, 3600) : 60;
    return { value, expires: Date.now() + Math.max(seconds - 10, 5) * 1000 };
  }

  #mayReceiveCredentials(url: URL): boolean {
    if (url.protocol === 'https:') return true;
    const host = url.host.toLowerCase();
    if (host === this.options.host.toLowerCase()) return true;
    if (this.options.insecureRegistries?.some((h) => h.toLowerCase() === host)) return true;
    return url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\./.test(url.hostname);
  }
}

function basic(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

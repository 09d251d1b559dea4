/**
 * Credentials from a docker-compatible config.json: `auths` (base64 `auth` "user:pass", or
 * `username`/`password`), `credHelpers` (per registry) and `credsStore` (all registries), the helpers
 * being `docker-credential-NAME get|store|erase` programs speaking JSON on stdin/stdout.
 *
 * The file holds secrets: it is written 0600 (its directories 0700), atomically, and every key of
 * it that box does not own is kept as it was.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { errnoOf, ImageError } from '../errors.js';
import { credentialKey, DOCKER_HUB_AUTH_KEY } from './hosts.js';

export interface Credentials {
  username: string;
  password: string;
}

interface ConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; [key: string]: unknown }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function defaultAuthFile(): string {
  const dir = process.env.DOCKER_CONFIG || join(homedir(), '.docker');
  return join(dir, 'config.json');
}

function readConfig(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return {};
    throw new ImageError('EIMAGE_IO', `reading the credentials file ${path} failed (${errnoOf(error)})`, {
      path,
      cause: error,
    });
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as ConfigFile;
  } catch (error) {
    throw new ImageError('EIMAGE_CORRUPT', `the credentials file ${path} is not a JSON object`, {
      path,
      cause: error,
    });
  }
}

async function writeConfig(path: string, config: ConfigFile): Promise<void> {
  // @box/sys when it is needed, as the store loads it.
  const { writeFileAtomic } = await import('@box/sys');
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileAtomic(path, `${JSON.stringify(config, null, '\t')}\n`, { syncDir: true });
  } catch (error) {
    throw new ImageError('EIMAGE_IO', `writing the credentials file ${path} failed (${errnoOf(error)})`, {
      path,
      cause: error,
    });
  }
}

/** The host part of an `auths` key, which docker writes as `host`, `https://host` or `https://host/v1/`. */
function keyHost(key: string): string {
  if (key === DOCKER_HUB_AUTH_KEY) return 'docker.io';
  const host = key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

function findAuthKey(config: ConfigFile, domain: string): string | undefined {
  const auths = config.auths ?? {};
  const exact = credentialKey(domain);
  if (exact in auths) return exact;
  return Object.keys(auths).find((key) => keyHost(key) === domain);
}

function helperOf(config: ConfigFile, domain: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  const name = helpers[credentialKey(domain)] ?? helpers[domain] ?? config.credsStore;
  if (name === undefined || name === '') return undefined;
  // The name becomes part of a program name: no paths, no options.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new ImageError('EIMAGE_CORRUPT', `credential helper name "${name}" is not valid`);
  }
  return name;
}

function runHelper(name: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = execFile(program, [action], { timeout: 30_000, maxBuffer: 1 << 20 }, (error, stdout) => {
      if (error) {
        const out = String(stdout).trim();
        reject(Object.assign(error, { helperOutput: out }));
      } else resolve(String(stdout));
    });
    child.stdin?.end(input);
  });
}

/** The credentials for a registry domain (`docker.io`, `localhost:5000`), or undefined for anonymous. */
export async function getCredentials(
  domain: string,
  authFile = defaultAuthFile(),
): Promise<Credentials | undefined> {
  const config = readConfig(authFile);
  const helper = helperOf(config, domain);
  if (helper !== undefined) {
    let out: string;
    try {
      out = await runHelper(helper, 'get', credentialKey(domain));
    } catch (error) {
      // "credentials not found in native keychain": anonymous, as docker does.
      if (/not found/i.test((error as { helperOutput?: string }).helperOutput ?? '')) return undefined;
      if (errnoOf(error) !== 'ENOENT') {
        throw new ImageError(
          'EIMAGE_AUTH',
          `the credential helper docker-credential-${helper} failed for ${domain}`,
          {
            cause: error,
          },
        );
      }
      // A configured helper that is not installed: fall through to `auths`, as docker does.
      out = '';
    }
    if (out !== '') {
      const parsed = JSON.parse(out) as { Username?: unknown; Secret?: unknown };
      if (typeof parsed.Username === 'string' && typeof parsed.Secret === 'string') {
        return { username: parsed.Username, password: parsed.Secret };
      }
    }
  }
  const key = findAuthKey(config, domain);
  if (key === undefined) return undefined;
  const entry = config.auths![key]!;
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw new ImageError(
        'EIMAGE_CORRUPT',
        `the "auth" of ${key} in ${authFile} is not base64 of user:password`,
        {
          path: authFile,
        },
      );
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/** Stores credentials (through the configured helper, else in `auths`). */
export async function storeCredentials(
  domain: string,
  credentials: Credentials,
  authFile = defaultAuthFile(),
): Promise<void> {
  const config = readConfig(authFile);
  const helper = helperOf(config, domain);
  const key = credentialKey(domain);
  if (helper !== undefined) {
    await runHelper(
      helper,
      'store',
      JSON.stringify({ ServerURL: key, Username: credentials.username, Secret: credentials.password }),
    ).catch((error: unknown) => {
      throw new ImageError(
        'EIMAGE_AUTH',
        `the credential helper docker-credential-${helper} could not store ${domain}`,
        {
          cause: error,
        },
      );
    });
    return;
  }
  const auths = { ...(config.auths ?? {}) };
  const old = findAuthKey(config, domain);
  if (old !== undefined) delete auths[old];
  auths[key] = { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64') };
  await writeConfig(authFile, { ...config, auths });
}

/** Removes stored credentials; false when there were none. */
export async function eraseCredentials(domain: string, authFile = defaultAuthFile()): Promise<boolean> {
  const config = readConfig(authFile);
  const helper = helperOf(config, domain);
  let erased = false;
  if (helper !== undefined) {
    erased = await runHelper(helper, 'erase', credentialKey(domain)).then(
      () => true,
      () => false,
    );
  }
  const key = findAuthKey(config, domain);
  if (key !== undefined) {
    const auths = { ...(config.auths ?? {}) };
    delete auths[key];
    await writeConfig(authFile, { ...config, auths });
    erased = true;
  }
  return erased;
}

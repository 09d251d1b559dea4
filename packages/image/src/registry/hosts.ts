/**
 * Which host, scheme and config.json key a registry has. docker.io is a name, not a host: its
 * API is served by registry-1.docker.io and docker keys its credentials "https://index.docker.io/v1/".
 */
import { ImageError } from '../errors.js';
import { DEFAULT_DOMAIN, parseReference } from '../reference.js';

const DOCKER_HUB_HOST = 'registry-1.docker.io';
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
const HOST_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]{1,5})?$/;

/** The host[:port] to speak to for a reference's registry: `busybox` → `registry-1.docker.io`. */
export function registryHostOf(reference: string): string {
  return wireHost(parseReference(reference).domain);
}

/** The wire host of a reference domain. */
export function wireHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? DOCKER_HUB_HOST : domain;
}

/**
 * The registry domain of what a user passes to `login`/`logout`: `localhost:5000`,
 * `https://myregistry.example/`, `docker.io`, `index.docker.io`, docker's own key.
 */
export function registryDomain(registry: string): string {
  let host = registry.trim();
  if (host === '' || host === DOCKER_HUB_AUTH_KEY) return DEFAULT_DOMAIN;
  host = host.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  if (!HOST_RE.test(host)) {
    throw new ImageError('EIMAGE_REFERENCE', `"${registry}" is not a registry host[:port]`, {
      reference: registry,
    });
  }
  host = host.toLowerCase();
  if (host === 'index.docker.io' || host === DOCKER_HUB_HOST || host === DEFAULT_DOMAIN)
    return DEFAULT_DOMAIN;
  return host;
}

/** The config.json `auths` key docker uses for a registry domain. */
export function credentialKey(domain: string): string {
  return domain === DEFAULT_DOMAIN ? DOCKER_HUB_AUTH_KEY : domain;
}

/** True for hosts that are always spoken to over plain http: the loopback. */
function isLoopback(host: string): boolean {
  const name = host.replace(/:[0-9]+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** `http://host` for loopback and listed insecure registries, `https://host` (system CAs) otherwise. */
export function baseUrl(host: string, insecureRegistries: readonly string[] = []): string {
  const insecure = isLoopback(host) || insecureRegistries.some((h) => h.toLowerCase() === host.toLowerCase());
  return `${insecure ? 'http' : 'https'}://${host}`;
}

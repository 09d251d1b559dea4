/** `box login` / `box logout`: credentials checked against the registry, then kept in config.json. */

import { RegistryClient } from './client.js';
import { type Credentials, defaultAuthFile, eraseCredentials, storeCredentials } from './credentials.js';
import { registryDomain } from './hosts.js';
import type { RegistryOptions } from './options.js';

/**
 * Checks `credentials` with GET /v2/ through the registry's auth flow (basic, or a token fetched
 * with them), then stores them for `registry` (`localhost:5000`, `docker.io`…).
 */
export async function registryLogin(
  registry: string,
  credentials: Credentials,
  options: RegistryOptions = {},
): Promise<void> {
  const domain = registryDomain(registry);
  const client = new RegistryClient(domain, {
    insecureRegistries: options.insecureRegistries,
    signal: options.signal,
    credentials: async () => credentials,
  });
  const res = await client.request('GET', '/v2/', { scopes: [] });
  await res.discard();
  if (res.status !== 200) throw await client.unexpected(res, `logging in to ${client.host}`);
  await storeCredentials(domain, credentials, options.authFile ?? defaultAuthFile());
}

/** Forgets the credentials of `registry`; false when there were none. */
export async function registryLogout(registry: string, options: RegistryOptions = {}): Promise<boolean> {
  return eraseCredentials(registryDomain(registry), options.authFile ?? defaultAuthFile());
}

/** A repository's tags (GET /v2/<name>/tags/list, followed through its `Link` pages): `pull --all-tags`. */
import { ImageError } from '../errors.js';
import { parseReference } from '../reference.js';
import { repositoryScope } from './auth.js';
import { clientFor, type RegistryOptions } from './options.js';

/** A page of the list is refused past this size, and the whole list past `MAX_TAGS`. */
const PAGE_LIMIT = 4 << 20;
const MAX_TAGS = 100_000;

/** The tags of the repository `reference` names (its tag or digest, if any, is ignored), sorted. */
export async function listTags(reference: string, options: RegistryOptions = {}): Promise<string[]> {
  const ref = parseReference(reference);
  const client = clientFor(ref.domain, options);
  const scopes = [repositoryScope(ref.path, 'pull')];
  const what = `the tags of ${ref.name}`;
  const tags: string[] = [];
  let next: string | undefined = `/v2/${ref.path}/tags/list?n=1000`;
  while (next !== undefined) {
    const res = await client.request('GET', next, { scopes });
    if (res.status === 404) {
      await res.discard();
      throw new ImageError('EIMAGE_NOT_FOUND', `repository ${ref.name} not found (${res.url})`, {
        url: res.url,
        status: 404,
        reference: ref.name,
      });
    }
    if (res.status !== 200) throw await client.unexpected(res, what);
    const body = await res.bytes(PAGE_LIMIT, what);
    let page: { tags?: unknown };
    try {
      page = JSON.parse(body.toString('utf8')) as { tags?: unknown };
    } catch (error) {
      throw new ImageError('EIMAGE_CORRUPT', `${what}: the registry's answer is not JSON`, {
        url: res.url,
        cause: error,
      });
    }
    const list = page.tags ?? [];
    if (!Array.isArray(list) || list.some((t) => typeof t !== 'string')) {
      throw new ImageError('EIMAGE_CORRUPT', `${what}: "tags" is not a list of names`, { url: res.url });
    }
    tags.push(...(list as string[]));
    if (tags.length > MAX_TAGS) {
      throw new ImageError('EIMAGE_TOO_LARGE', `${ref.name} has more than ${MAX_TAGS} tags`, {
        url: res.url,
      });
    }
    next = nextPage(res.headers.get('link'), res.url);
  }
  return [...new Set(tags)].sort();
}

/**
 * The next page from a `Link: </v2/...?last=x&n=1000>; rel="next"` header, as a path of the same
 * registry (a link to another host is not followed: the credentials are this registry's).
 */
function nextPage(link: string | null, current: string): string | undefined {
  const match = link === null ? null : /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  if (!match) return undefined;
  const url = new URL(match[1]!, current);
  if (url.host !== new URL(current).host) return undefined;
  return `${url.pathname}${url.search}`;
}

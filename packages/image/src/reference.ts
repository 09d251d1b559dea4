import { ImageError } from './errors.js';

/** A parsed, normalised image reference: `docker.io/library/busybox:latest`. */
export interface Reference {
  /** Registry host with optional port: `docker.io`, `localhost:5000`. */
  readonly domain: string;
  /** Repository path below the domain: `library/busybox`. */
  readonly path: string;
  /** `domain/path`, the full repository name. */
  readonly name: string;
  /** The tag, `latest` when neither a tag nor a digest was given; undefined for a digest-only reference. */
  readonly tag: string | undefined;
  /** `sha256:<64 hex>` when the reference pins a digest. */
  readonly digest: string | undefined;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const HEX64_RE = /^[a-f0-9]{64}$/;
// distribution/reference: path-component = [a-z0-9]+ (separator [a-z0-9]+)*, separator = [_.] | __ | -+
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
const NAME_MAX = 255;

function invalid(ref: string, why: string): ImageError {
  return new ImageError('EIMAGE_REFERENCE', `invalid reference format: ${why} in "${ref}"`, {
    reference: ref,
  });
}

/** True for a digest box accepts: `sha256:` and 64 lowercase hex digits. */
export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

/** True for a tag: a word character, then up to 127 word characters, dots and dashes. */
export function isTag(value: string): boolean {
  return TAG_RE.test(value);
}

/**
 * Parses and normalises a docker reference the way `docker pull` does:
 * `busybox` → `docker.io/library/busybox:latest`, `localhost:5000/a/b:tag`,
 * `name@sha256:<64 hex>`, `name:tag@sha256:…`. Throws `EIMAGE_REFERENCE`.
 */
export function parseReference(input: string): Reference {
  if (typeof input !== 'string' || input.length === 0) throw invalid(String(input), 'empty reference');
  if (input !== input.trim() || /\s/.test(input)) throw invalid(input, 'whitespace');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) {
      throw invalid(input, `digest "${digest}" is not sha256 followed by 64 lowercase hex digits`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(input, `tag "${tag}" is not valid`);
  }
  if (rest.length === 0) throw invalid(input, 'empty repository name');
  if (HEX64_RE.test(rest) && tag === undefined && digest === undefined) {
    throw invalid(input, 'a 64-character hexadecimal string is an image ID, not a repository name');
  }

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (
      first.includes('.') ||
      first.includes(':') ||
      first === 'localhost' ||
      first !== first.toLowerCase()
    ) {
      domain = first;
      path = rest.slice(slash + 1);
      if (!DOMAIN_RE.test(domain)) throw invalid(input, `registry "${domain}" is not a valid host[:port]`);
    }
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  for (const component of path.split('/')) {
    if (component !== component.toLowerCase()) throw invalid(input, 'repository name must be lowercase');
    if (!PATH_COMPONENT_RE.test(component)) {
      throw invalid(input, `repository path component "${component}" is not valid`);
    }
  }
  const name = `${domain}/${path}`;
  if (name.length > NAME_MAX) throw invalid(input, `repository name longer than ${NAME_MAX} characters`);
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return { domain, path, name, tag, digest };
}

/** The full normalised string: `docker.io/library/busybox:latest`, `name@sha256:…`, `name:tag@sha256:…`. */
export function formatReference(ref: Reference): string {
  return `${ref.name}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** The repository name as docker shows it: `busybox`, `user/app`, `localhost:5000/a/b`. */
export function familiarName(ref: Pick<Reference, 'domain' | 'path'>): string {
  if (ref.domain !== DEFAULT_DOMAIN) return `${ref.domain}/${ref.path}`;
  return ref.path.startsWith(OFFICIAL_PREFIX) && !ref.path.slice(OFFICIAL_PREFIX.length).includes('/')
    ? ref.path.slice(OFFICIAL_PREFIX.length)
    : ref.path;
}

/** The short form for display: `busybox:latest`, `localhost:5000/a/b:tag`, `user/app@sha256:…`. */
export function familiarString(ref: Reference): string {
  return `${familiarName(ref)}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** Parses and returns the normalised string form in one step. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** The reference with its name and tag only (`name:tag`), or undefined when it has no tag. */
export function tagged(ref: Reference): string | undefined {
  return ref.tag === undefined ? undefined : `${ref.name}:${ref.tag}`;
}

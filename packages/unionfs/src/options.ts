/**
 * The data string of an overlay mount. mount(2) copies at most one page of it (4096 bytes with the
 * final NUL), which long absolute layer paths overflow after a few dozen layers. Then, as docker's
 * overlay2 driver does, each layer gets a short symlink `l/<ID>` in a layers root, the lowerdirs are
 * given relative to that root (`lowerdir=l/ID1:l/ID2`) and the caller chdirs there before mounting.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { UnionfsError } from './errors.js';

/** One page, with the terminating NUL. */
export const MOUNT_DATA_MAX = 4095;
/** overlayfs's OVL_MAX_STACK: the most lower layers one mount can have. */
export const MAX_LOWER_LAYERS = 500;
/** The directory of short links inside a layers root. */
export const LINK_DIR = 'l';

export interface OverlayMountDataOptions {
  /** The read-only layers, top first (as overlayfs wants them). */
  lowerdirs: readonly string[];
  /** The writable layer; with `workdir`, required unless `readonly`. */
  upperdir?: string;
  /** overlayfs's scratch directory: empty, on the same filesystem as `upperdir`. */
  workdir?: string;
  /** A mount without upper and work dirs (needs at least two lowers). */
  readonly?: boolean;
  /** Keep overlay metadata in `user.overlay.*` xattrs, as a mount in a user namespace must (Linux ≥ 5.11). */
  userxattr?: boolean;
  /**
   * Where the `l/` short links are made when the data would not fit in one page. Without it, data
   * that is too long is an `EUNIONFSOPTIONS` error.
   */
  layersRoot?: string;
  /**
   * Turn off the features that make an upper dir unfit to be diffed into an OCI layer (`index`,
   * `redirect_dir`, `metacopy`), each only where the kernel knows it. Default true for writable mounts.
   */
  diffable?: boolean;
  /** More options, e.g. `xino=off`; none may contain a comma. */
  extraOptions?: readonly string[];
  /** Always use short links, even when absolute paths would fit (tests; mounts that must not move). */
  forceShortLinks?: boolean;
}

export interface OverlayMountData {
  /** The `data` argument of mount(2). */
  data: string;
  /** Set when the lowerdirs are relative: chdir here before mounting. */
  cwd?: string;
}

/** Checks a path for overlayfs's option syntax; returns it normalised. */
export function checkOverlayPath(path: string, what: string): string {
  if (typeof path !== 'string' || path === '') {
    throw new UnionfsError('EUNIONFSPATH', `${what} is empty`);
  }
  if (!isAbsolute(path)) {
    throw new UnionfsError('EUNIONFSPATH', `${what} must be an absolute path: ${path}`, { path });
  }
  const bad = /[:,\\\n\0]/.exec(path);
  if (bad) {
    const shown = bad[0] === '\n' ? 'a newline' : bad[0] === '\0' ? 'a NUL byte' : `"${bad[0]}"`;
    throw new UnionfsError(
      'EUNIONFSPATH',
      `${what} contains ${shown}, which overlayfs mount options cannot hold: ${JSON.stringify(path)}`,
      { path },
    );
  }
  const normalised = normalize(path);
  return normalised.length > 1 ? normalised.replace(/\/+$/, '') : normalised;
}

function checkOptions(options: OverlayMountDataOptions) {
  const { lowerdirs, upperdir, workdir, readonly } = options;
  if (!Array.isArray(lowerdirs) || lowerdirs.length === 0) {
    throw new UnionfsError('EUNIONFSOPTIONS', 'an overlay needs at least one lowerdir');
  }
  if (lowerdirs.length > MAX_LOWER_LAYERS) {
    throw new UnionfsError(
      'EUNIONFSOPTIONS',
      `${lowerdirs.length} lower layers: overlayfs takes at most ${MAX_LOWER_LAYERS}`,
    );
  }
  const lowers = lowerdirs.map((dir, i) => checkOverlayPath(dir, `lowerdir ${i}`));
  const seen = new Set<string>();
  for (const dir of lowers) {
    if (seen.has(dir))
      throw new UnionfsError('EUNIONFSOPTIONS', `lowerdir ${dir} is given twice`, { path: dir });
    seen.add(dir);
  }
  if (readonly) {
    if (upperdir !== undefined || workdir !== undefined) {
      throw new UnionfsError('EUNIONFSOPTIONS', 'a readonly overlay takes no upperdir or workdir');
    }
    if (lowers.length < 2) {
      throw new UnionfsError(
        'EUNIONFSOPTIONS',
        'a readonly overlay needs at least two lowerdirs (the kernel refuses one); bind-mount a single layer read-only instead',
      );
    }
    return { lowers, upper: undefined, work: undefined };
  }
  if (upperdir === undefined || workdir === undefined) {
    throw new UnionfsError(
      'EUNIONFSOPTIONS',
      'a writable overlay needs both upperdir and workdir (or pass readonly: true)',
    );
  }
  const upper = checkOverlayPath(upperdir, 'upperdir');
  const work = checkOverlayPath(workdir, 'workdir');
  if (upper === work)
    throw new UnionfsError('EUNIONFSOPTIONS', 'upperdir and workdir must differ', { path: upper });
  if (upper.startsWith(`${work}/`) || work.startsWith(`${upper}/`)) {
    throw new UnionfsError('EUNIONFSOPTIONS', 'upperdir and workdir must not be inside one another', {
      path: upper,
    });
  }
  if (seen.has(upper))
    throw new UnionfsError('EUNIONFSOPTIONS', `${upper} is both a lowerdir and the upperdir`);
  return { lowers, upper, work };
}

let kernelParams: string[] | undefined;

/** The overlay module parameters this kernel has (/sys/module/overlay/parameters), cached. */
function overlayParams(): string[] {
  if (kernelParams === undefined) {
    try {
      kernelParams = readdirSync('/sys/module/overlay/parameters');
    } catch {
      kernelParams = [];
    }
  }
  return kernelParams;
}

function tailOptions(options: OverlayMountDataOptions, writable: boolean): string {
  const parts: string[] = [];
  if (options.userxattr) parts.push('userxattr');
  if (writable && options.diffable !== false) {
    const params = overlayParams();
    if (params.includes('index')) parts.push('index=off');
    // With userxattr (a user namespace) the kernel takes no redirect_dir option: it keeps
    // "nofollow" there, which creates no redirects either.
    if (params.includes('redirect_dir') && !options.userxattr) parts.push('redirect_dir=off');
    if (params.includes('metacopy')) parts.push('metacopy=off');
  }
  for (const opt of options.extraOptions ?? []) {
    if (opt === '' || /[,\n\0]/.test(opt)) {
      throw new UnionfsError('EUNIONFSOPTIONS', `bad extra overlay option ${JSON.stringify(opt)}`);
    }
    parts.push(opt);
  }
  return parts.map((p) => `,${p}`).join('');
}

/**
 * The mount data for an overlay of `lowerdirs` (top first) under `upperdir`/`workdir`. When it
 * would not fit in one page, the lowers are linked as `l/<ID>` under `layersRoot` (made once per
 * layer, see {@link linkLayer}) and the result's `cwd` says where to chdir before mounting.
 */
export function overlayMountData(options: OverlayMountDataOptions): OverlayMountData {
  const { lowers, upper, work } = checkOptions(options);
  const tail = `${upper ? `,upperdir=${upper},workdir=${work}` : ''}${tailOptions(options, upper !== undefined)}`;
  const absolute = `lowerdir=${lowers.join(':')}${tail}`;
  if (!options.forceShortLinks && Buffer.byteLength(absolute) <= MOUNT_DATA_MAX) return { data: absolute };

  if (options.layersRoot === undefined) {
    throw new UnionfsError(
      'EUNIONFSOPTIONS',
      `overlay mount data for ${lowers.length} layers is ${Buffer.byteLength(absolute)} bytes, more than one page (${MOUNT_DATA_MAX}); pass layersRoot to use short layer links`,
    );
  }
  const root = checkOverlayPath(options.layersRoot, 'layersRoot');
  const ids = lowers.map((dir) => `${LINK_DIR}/${linkLayer(root, dir)}`);
  const data = `lowerdir=${ids.join(':')}${tail}`;
  if (Buffer.byteLength(data) > MOUNT_DATA_MAX) {
    throw new UnionfsError(
      'EUNIONFSOPTIONS',
      `overlay mount data for ${lowers.length} layers is ${Buffer.byteLength(data)} bytes even with short layer links, more than one page (${MOUNT_DATA_MAX}); use fewer layers`,
    );
  }
  return { data, cwd: root };
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** Link names start this long and grow only on a clash. */
const ID_MIN = 10;
const ID_MAX = 26;

function base32(bytes: Buffer, length: number): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
    if (out.length >= length) break;
  }
  return out;
}

function linkTarget(root: string, diffDir: string): string {
  // Relative when the layer lives under the root, so the whole root can move (docker's `../<id>/diff`).
  const rel = relative(join(root, LINK_DIR), diffDir);
  return rel.startsWith('../') && !rel.startsWith(`../..`) ? rel : diffDir;
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UnionfsError('EUNIONFSIO', `cannot read layer link ${path}`, { path, cause: error });
  }
}

/**
 * Makes (once) the short link `<layersRoot>/l/<ID>` → `diffDir` and returns the ID: 10 to 26
 * characters of base32 from the SHA-256 of the layer's path, longer only when a shorter one is
 * taken by another layer. Calling it again for the same layer returns the same ID.
 */
export function linkLayer(layersRoot: string, diffDir: string): string {
  const root = checkOverlayPath(layersRoot, 'layersRoot');
  const dir = checkOverlayPath(diffDir, 'layer directory');
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (error) {
    throw new UnionfsError('EUNIONFSPATH', `layer directory ${dir} does not exist`, {
      path: dir,
      cause: error,
    });
  }
  if (!isDir) throw new UnionfsError('EUNIONFSPATH', `layer ${dir} is not a directory`, { path: dir });
  const linkDir = join(root, LINK_DIR);
  mkdirSync(linkDir, { recursive: true, mode: 0o700 });
  const target = linkTarget(root, dir);
  const digest = createHash('sha256').update(dir).digest();
  for (let length = ID_MIN; length <= ID_MAX; length++) {
    const id = base32(digest, length);
    const link = join(linkDir, id);
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = readLink(link);
      if (existing !== undefined) {
        if (resolve(linkDir, existing) === dir) return id;
        break; // taken by another layer: try a longer ID
      }
      try {
        symlinkSync(target, link);
        return id;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new UnionfsError('EUNIONFSIO', `cannot create layer link ${link}`, {
            path: link,
            cause: error,
          });
        }
        // Another process made it at the same moment: look again.
      }
    }
  }
  throw new UnionfsError('EUNIONFSIO', `no free short link for layer ${dir} in ${linkDir}`, { path: dir });
}

/** Removes the short link(s) of one layer (before the layer itself is deleted). Returns how many. */
export function unlinkLayer(layersRoot: string, diffDir: string): number {
  const root = checkOverlayPath(layersRoot, 'layersRoot');
  const dir = checkOverlayPath(diffDir, 'layer directory');
  return removeLinks(root, (target) => target === dir);
}

/** Removes every short link whose layer no longer exists. Returns how many. */
export function pruneLayerLinks(layersRoot: string): number {
  const root = checkOverlayPath(layersRoot, 'layersRoot');
  return removeLinks(root, (target) => !existsSync(target));
}

function removeLinks(root: string, remove: (target: string) => boolean): number {
  const linkDir = join(root, LINK_DIR);
  let names: string[];
  try {
    names = readdirSync(linkDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw new UnionfsError('EUNIONFSIO', `cannot list ${linkDir}`, { path: linkDir, cause: error });
  }
  let removed = 0;
  for (const name of names) {
    const link = join(linkDir, name);
    const target = readLink(link);
    if (target !== undefined && remove(resolve(linkDir, target))) {
      unlinkSync(link);
      removed++;
    }
  }
  return removed;
}

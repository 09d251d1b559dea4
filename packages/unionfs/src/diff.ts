/**
 * A container's changes as an OCI layer: the upper dir of its overlay, walked in sorted order and
 * written as an uncompressed tar, with overlayfs's whiteouts (0/0 character devices) turned back
 * into `.wh.<name>` entries and opaque directories into `<dir>/.wh..wh..opq`.
 *
 * Speed: a diff is bound by system calls (lstat, llistxattr, open/read/close per file). Past the
 * first batch of entries, batches are encoded by worker threads (two at most) while the main thread
 * walks the directories and hands on the results in order; hard-linked and large files are always
 * done on the main thread, which keeps the hard-link map and streams large files in chunks.
 */
import { type Dirent, existsSync, lstatSync, readdirSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DiffJob, DiffJobResult } from './diff-worker.js';
import { changed, type EntryContext, encodeEntry, fail, OPEN_FLAGS, replaced, sameFile } from './entry.js';
import { UnionfsError, type UnionfsErrorCode } from './errors.js';
import { checkOverlayPath } from './options.js';
import { BLOCK, END_OF_ARCHIVE } from './tar.js';
import { openUpperView } from './upper-view.js';
import { opaqueXattr, overlayXattrPrefix } from './whiteout.js';
import { dumpTreeXattrs, xattrBackend } from './xattr.js';

export interface DiffLayerOptions {
  /** The overlay was mounted with userxattr: its metadata is in `user.overlay.*`. */
  userxattr?: boolean;
  /** The upper dir was written by fuse-overlayfs: its own opaque marks count. */
  fuseOverlay?: boolean;
  /** Leave extended attributes out of the layer (opaque directories are still found). Default false. */
  skipXattrs?: boolean;
  /** Use worker threads for big diffs (default: when the built worker and more than one CPU are there). */
  parallel?: boolean;
}

/** Output is gathered into chunks of this size. */
const CHUNK = 256 * 1024;
/** Files up to this size are read whole into the output; larger ones are streamed in READ chunks. */
const SMALL_MAX = 64 * 1024;
const READ = 1024 * 1024;
/** Entries per worker batch, the most output one batch may hold before it defers the rest, batches in flight. */
const BATCH = 256;
const BATCH_BUDGET = 4 << 20;
const WINDOW = 4;

/**
 * The OCI layer tar (uncompressed) of an overlay upper dir, as a stream: regular files, dirs,
 * symlinks, hard links (one inode → one file and links to it), devices and fifos with their
 * modes, owners, mtimes and xattrs (not overlayfs's own, not security.selinux), whiteouts as
 * `.wh.<name>` and opaque dirs as `<dir>/.wh..wh..opq`, sorted by name. Memory stays bounded:
 * large files are read in chunks and nothing is read far ahead of the consumer. Errors
 * (`EUNIONFSUNSUPPORTED` for an upper that uses redirect_dir or metacopy, a socket is skipped)
 * come as stream errors.
 */
export function diffLayer(upperdir: string, options: DiffLayerOptions = {}): Readable {
  const root = checkOverlayPath(upperdir, 'upperdir');
  return Readable.from(generate(root, options), { objectMode: false, highWaterMark: 4 * CHUNK });
}

class Chunks {
  buf = Buffer.allocUnsafe(CHUNK);
  used = 0;
  /** Full chunks waiting to be handed on. */
  ready: Buffer[] = [];
  reserve = (length: number): [Buffer, number] => {
    if (this.used + length > this.buf.length) {
      this.close();
      if (length > this.buf.length) this.buf = Buffer.allocUnsafe(length);
    }
    const off = this.used;
    this.used += length;
    return [this.buf, off];
  };
  /** Ends the current chunk (if it holds anything) and starts a new one. */
  close(): void {
    if (this.used === 0) return;
    this.ready.push(this.buf.subarray(0, this.used));
    this.buf = Buffer.allocUnsafe(CHUNK);
    this.used = 0;
  }
  /** Puts bytes made elsewhere (a worker's batch) after what is there. */
  append(bytes: Buffer): void {
    if (bytes.length <= this.buf.length - this.used) {
      bytes.copy(this.buf, this.used);
      this.used += bytes.length;
    } else {
      this.close();
      this.ready.push(bytes);
    }
  }
  drain(): Buffer[] {
    const out = this.ready;
    this.ready = [];
    return out;
  }
}

/**
 * The entries below root in output order (depth-first, names sorted), as relative paths: the one
 * walk of an upper dir, for its layer (diffLayer) and its list of changes (changes.ts).
 */
export function* walk(root: string): Generator<string> {
  const stack: Array<{ rel: string; entries: Dirent[]; next: number }> = [
    { rel: '', entries: list(root), next: 0 },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next >= top.entries.length) {
      stack.pop();
      continue;
    }
    const entry = top.entries[top.next++]!;
    const rel = top.rel === '' ? entry.name : `${top.rel}/${entry.name}`;
    yield rel;
    let isDir = entry.isDirectory();
    if (
      !isDir &&
      !entry.isFile() &&
      !entry.isSymbolicLink() &&
      !entry.isCharacterDevice() &&
      !entry.isFIFO()
    ) {
      // DT_UNKNOWN on some filesystems, or a block device or socket: ask lstat.
      try {
        isDir = lstatSync(`${root}/${rel}`).isDirectory();
      } catch (error) {
        throw fail('cannot stat', `${root}/${rel}`, error);
      }
    }
    if (isDir) stack.push({ rel, entries: list(`${root}/${rel}`), next: 0 });
  }
}

function list(dir: string): Dirent[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    throw fail('cannot list', dir, error);
  }
  for (const entry of entries) {
    if (entry.name.includes('\uFFFD')) {
      const raw = readdirSync(dir, { encoding: 'buffer' }).find((b) => b.toString('utf8') === entry.name);
      if (raw && !Buffer.from(entry.name, 'utf8').equals(raw)) {
        throw new UnionfsError(
          'EUNIONFSUNSUPPORTED',
          `file name in ${dir} is not UTF-8: ${raw.toString('hex')}`,
          {
            path: dir,
          },
        );
      }
    }
  }
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function* generate(upperdir: string, options: DiffLayerOptions): AsyncGenerator<Buffer> {
  let isDir = false;
  try {
    isDir = lstatSync(upperdir).isDirectory();
  } catch (error) {
    throw fail('cannot read upperdir', upperdir, error);
  }
  if (!isDir)
    throw new UnionfsError('EUNIONFSPATH', `upperdir ${upperdir} is not a directory`, { path: upperdir });
  // Walked through a view that follows no symlink: a running container may be writing it.
  const view = openUpperView(upperdir);
  try {
    yield* encodeTree(view.root, options);
  } catch (error) {
    throw view.shown(error);
  } finally {
    view.close();
  }
}

/** The layer of the tree at `root`, in chunks. */
async function* encodeTree(root: string, options: DiffLayerOptions): AsyncGenerator<Buffer> {
  const backend = xattrBackend();
  // The tools fallback reads every xattr of the tree in one getfattr run instead of one per file.
  const tree = backend.kind === 'tools' ? await dumpTreeXattrs(root) : undefined;
  const ctx: EntryContext = {
    root,
    overlayPrefix: overlayXattrPrefix(options),
    opaqueName: opaqueXattr(options),
    fuseMarks: options.fuseOverlay === true,
    skipXattrs: options.skipXattrs === true,
    xattrsOf: tree ? (path) => tree.get(path) ?? [] : (path) => backend.list(path),
    smallMax: SMALL_MAX,
    links: new Map(),
  };
  const out = new Chunks();
  const entries = walk(root);

  /** Encodes one entry on this thread, streaming a large file's data. */
  async function* one(rel: string): AsyncGenerator<Buffer> {
    const result = encodeEntry(ctx, rel, out.reserve);
    if (result === undefined || result === 'defer') return;
    out.close();
    yield* out.drain();
    yield* readLarge(result.large, result.seen);
    const pad = Math.ceil(result.size / BLOCK) * BLOCK - result.size;
    const [buf, off] = out.reserve(pad);
    buf.fill(0, off, off + pad);
  }

  /** The next n entries (not `for…of` with `break`, which would end the walk). */
  const take = (n: number): string[] => {
    const rels: string[] = [];
    for (let next = entries.next(); !next.done; next = entries.next()) {
      rels.push(next.value);
      if (rels.length >= n) break;
    }
    return rels;
  };
  // Entries are done on this thread until the workers have started (which takes a while, they load
  // @box/sys): a small diff never waits for them, and they are only started for a big one.
  const wantWorkers = backend.kind === 'sys' && options.parallel !== false;
  let pool: Pool | undefined;
  for (let done = 0; ; done++) {
    if (done === BATCH && wantWorkers) pool = workerPool();
    if (pool?.ready()) break;
    const next = entries.next();
    if (next.done) {
      pool = undefined;
      break;
    }
    yield* one(next.value);
    yield* out.drain();
  }
  if (pool) {
    const workers = pool;
    const inflight: Array<{ rels: string[]; result: Promise<DiffJobResult> }> = [];
    const fill = () => {
      while (inflight.length < WINDOW) {
        const rels = take(BATCH);
        if (rels.length === 0) return;
        const job: DiffJob = {
          id: 0,
          root,
          userxattr: options.userxattr === true,
          fuseOverlay: ctx.fuseMarks,
          skipXattrs: ctx.skipXattrs,
          smallMax: SMALL_MAX,
          budget: BATCH_BUDGET,
          rels,
        };
        inflight.push({ rels, result: workers.run(job) });
      }
    };
    try {
      fill();
      while (inflight.length > 0) {
        const { rels, result } = inflight.shift()!;
        const r = await result;
        fill();
        if ('error' in r) {
          throw new UnionfsError((r.error.code as UnionfsErrorCode) ?? 'EUNIONFSIO', r.error.message, {
            path: r.error.path,
          });
        }
        const bytes = Buffer.from(r.buffer, 0, r.length);
        let at = 0;
        for (const [offset, index] of r.marks) {
          out.append(bytes.subarray(at, offset));
          at = offset;
          yield* one(rels[index]!);
        }
        out.append(bytes.subarray(at));
        yield* out.drain();
      }
    } finally {
      // Stopped early (an error, or the consumer went away): the running batches' results are not
      // used, but they are waited for, since they read by path through the view, whose fd number
      // (closed after this) the next open may take.
      await Promise.allSettled(inflight.map(({ result }) => result));
    }
  }
  const [buf, off] = out.reserve(END_OF_ARCHIVE.length);
  buf.fill(0, off, off + END_OF_ARCHIVE.length);
  out.close();
  yield* out.drain();
}

async function* readLarge(path: string, seen: Stats): AsyncGenerator<Buffer> {
  const size = seen.size;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (error) {
    throw fail('cannot open', path, error);
  }
  try {
    if (!sameFile(await handle.stat(), seen)) throw replaced(path);
    let done = 0;
    while (done < size) {
      const buf = Buffer.allocUnsafe(Math.min(READ, size - done));
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, done + filled);
        if (bytesRead === 0) throw changed(path);
        filled += bytesRead;
      }
      done += filled;
      yield buf;
    }
  } catch (error) {
    throw fail('cannot read', path, error);
  } finally {
    await handle.close();
  }
}

interface Pool {
  /** True once every worker has loaded its modules. */
  ready(): boolean;
  run(job: DiffJob): Promise<DiffJobResult>;
}

let shared: Pool | null | undefined;

/**
 * The shared diff workers, started on first use and kept (unref'd) for the process; undefined when
 * the built worker (dist/diff-worker.js) or a second CPU is missing.
 */
function workerPool(): Pool | undefined {
  if (shared !== undefined) return shared ?? undefined;
  const url = new URL('./diff-worker.js', import.meta.url);
  const size = Math.min(2, availableParallelism());
  if (size < 2 || url.protocol !== 'file:' || !existsSync(fileURLToPath(url))) {
    shared = null;
    return undefined;
  }
  // Each worker sets its flag when loaded: read synchronously, since no message is seen while
  // the main thread is busy encoding.
  const flags = new Int32Array(new SharedArrayBuffer(4 * size));
  const workers = Array.from({ length: size }, (_, index) => {
    const worker = new Worker(url, { workerData: { flags, index } });
    const waiting = new Map<number, { resolve: (r: DiffJobResult) => void; reject: (e: unknown) => void }>();
    worker.on('message', (r: DiffJobResult) => {
      const w = waiting.get(r.id);
      waiting.delete(r.id);
      if (waiting.size === 0) worker.unref();
      w?.resolve(r);
    });
    const broken = (error: unknown) => {
      for (const w of waiting.values()) w.reject(error);
      waiting.clear();
      shared = undefined; // start new workers next time
    };
    worker.on('error', broken);
    worker.on('exit', (code) => broken(new UnionfsError('EUNIONFSIO', `diff worker exited (${code})`)));
    worker.unref(); // after the listeners: adding a 'message' listener refs the worker's port again
    return { worker, waiting };
  });
  let nextId = 1;
  let turn = 0;
  const pool: Pool = {
    ready() {
      for (let i = 0; i < size; i++) if (Atomics.load(flags, i) !== 1) return false;
      return true;
    },
    run(job) {
      const w = workers[turn++ % workers.length]!;
      const id = nextId++;
      return new Promise((resolve, reject) => {
        w.waiting.set(id, { resolve, reject });
        w.worker.ref(); // keep the process alive while a batch is out
        w.worker.postMessage({ ...job, id });
      });
    },
  };
  shared = pool;
  return pool;
}

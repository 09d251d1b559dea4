/**
 * A diff worker: encodes batches of layer entries (stat, xattrs, headers and small files) off the
 * main thread, so that a big diff uses more than one core. Hard-linked and large files are left to
 * the main thread (`marks`), which keeps the order and streams them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type EntryContext, encodeEntry } from './entry.js';
import { isUnionfsError } from './errors.js';
import { opaqueXattr, overlayXattrPrefix } from './whiteout.js';
import { xattrBackend } from './xattr.js';

export interface DiffJob {
  id: number;
  root: string;
  userxattr: boolean;
  fuseOverlay: boolean;
  skipXattrs: boolean;
  smallMax: number;
  /** Stop encoding (defer the rest) once the batch's output is this big. */
  budget: number;
  rels: string[];
}

export type DiffJobResult =
  | { id: number; buffer: ArrayBuffer; length: number; marks: Array<[offset: number, index: number]> }
  | { id: number; error: { message: string; code?: string; path?: string } };

function run(job: DiffJob): DiffJobResult {
  const backend = xattrBackend();
  const ctx: EntryContext = {
    root: job.root,
    overlayPrefix: overlayXattrPrefix({ userxattr: job.userxattr }),
    opaqueName: opaqueXattr({ userxattr: job.userxattr }),
    fuseMarks: job.fuseOverlay,
    skipXattrs: job.skipXattrs,
    xattrsOf: (path) => backend.list(path),
    smallMax: job.smallMax,
  };
  let buf = Buffer.allocUnsafeSlow(1 << 20);
  let used = 0;
  const reserve = (length: number): [Buffer, number] => {
    if (used + length > buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, used + length));
      buf.copy(bigger, 0, 0, used);
      buf = bigger;
    }
    const off = used;
    used += length;
    return [buf, off];
  };
  const marks: Array<[number, number]> = [];
  for (let i = 0; i < job.rels.length; i++) {
    if (used >= job.budget) {
      marks.push([used, i]);
      continue;
    }
    const before = used;
    if (encodeEntry(ctx, job.rels[i]!, reserve) === 'defer') {
      used = before;
      marks.push([used, i]);
    }
  }
  return { id: job.id, buffer: buf.buffer as ArrayBuffer, length: used, marks };
}

parentPort?.on('message', (job: DiffJob) => {
  let result: DiffJobResult;
  try {
    result = run(job);
  } catch (error) {
    const e = error as Error & { code?: string; path?: string };
    result = {
      id: job.id,
      error: {
        message: e.message ?? String(error),
        code: isUnionfsError(error) ? e.code : undefined,
        path: e.path,
      },
    };
  }
  if ('buffer' in result) parentPort?.postMessage(result, [result.buffer]);
  else parentPort?.postMessage(result);
});

// Tell the main thread this worker is loaded (see workerPool in diff.ts).
const started = workerData as { flags?: Int32Array; index?: number } | null;
if (started?.flags && started.index !== undefined) Atomics.store(started.flags, started.index, 1);

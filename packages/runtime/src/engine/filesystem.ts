/**
 * A container's files from the host: copy in and out (cp), its whole filesystem as a tar
 * (export), its changes as a new image (commit). Every container path is resolved inside the
 * container's root (see ../rootfs/copy.ts): /proc/PID/root while it runs, its layers mounted
 * for the operation while it is stopped.
 */
import { closeSync, rmSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { IdMapping } from '@box/ns';
import { type Change, diffLayer, layerChanges, type WithOverlayOptions, withOverlay } from '@box/unionfs';
import { EngineError } from '../errors.js';
import type { EngineContext } from './context.js';
import { commitPauseMarker, freeze, isPaused, takeCommitPauseMarker, thaw } from './freezer.js';
import { isRootless } from './rootless.js';
import { hasCgroup } from './rootless-cgroups.js';
import { fuseFallbackFor, overlayProgramFor, withFuseOverlay } from './rootless-overlay.js';
import { processAlive } from './status.js';
import type { ContainerRecord, ImageConfig } from './types.js';

/**
 * withOverlay for a stopped container's files; through fuse-overlayfs for a rootless container on
 * it, or where the kernel refuses the mount (see rootless-overlay.ts).
 */
async function withContainerOverlay<T>(
  state: ContainerRecord,
  options: WithOverlayOptions,
  fn: (merged: string) => T | Promise<T>,
): Promise<T> {
  let program = overlayProgramFor(state);
  if (program === undefined) {
    try {
      return await withOverlay(options, fn);
    } catch (error) {
      program = fuseFallbackFor(error);
      if (program === undefined) throw error;
    }
  }
  return withFuseOverlay(program, options, fn);
}

/** Runs `fn` with the container's root directory on the host. */
export async function withRoot<T>(state: ContainerRecord, fn: (root: string) => T | Promise<T>): Promise<T> {
  if (processAlive(state)) return fn(`/proc/${state.pid}/root`);
  const { upperdir, workdir, lowerdirs, layersRoot } = state.overlay;
  // Rootless: mounted in box's own mount namespace (see rootless.ts), with user.* xattrs.
  return withContainerOverlay(
    state,
    { lowerdirs, upperdir, workdir, layersRoot, userxattr: isRootless() },
    fn,
  );
}

/** A container id as the host sees it, through the container's user namespace map if it has one. */
function toHost(id: number, mappings: readonly IdMapping[] | undefined): number {
  if (!mappings?.length) return id;
  const m = mappings.find((m) => id >= m.containerID && id < m.containerID + m.size);
  if (!m) throw new EngineError('EINVAL', `the container's user namespace does not map id ${id}`);
  return id - m.containerID + m.hostID;
}

/**
 * The owner docker's `cp -a` gives what it copies into a container: its user (USER of the image,
 * or -u) and that user's group, as host ids; undefined when it has none configured (the copy
 * keeps its owners, as docker's).
 */
export function containerUserOwner(
  ctx: EngineContext,
  state: ContainerRecord,
): { uid: number; gid: number } | undefined {
  if (!state.user) return undefined;
  const spec = ctx.store.readSpec(state.id);
  const user = spec.process?.user ?? { uid: 0, gid: 0 };
  return {
    uid: toHost(user.uid, spec.linux?.uidMappings),
    gid: toHost(user.gid, spec.linux?.gidMappings),
  };
}

/** The container's filesystem (its layer over its image's, without volumes) as a tar into `out`. */
export async function exportTo(state: ContainerRecord, out: NodeJS.WritableStream): Promise<void> {
  const { upperdir, lowerdirs, layersRoot } = state.overlay;
  const userxattr = isRootless();
  // Following no symlink: a running container could swap a directory of its upper dir for a link
  // to a host directory while the walk is between listing it and reading it.
  await withContainerOverlay(
    state,
    { lowerdirs: [upperdir, ...lowerdirs], readonly: true, layersRoot, userxattr, noSymlinks: true },
    async (merged) => {
      await pipeline(diffLayer(merged), out);
    },
  );
}

/**
 * The container's changes against its image, as docker's `diff` (see @box/unionfs changes.ts).
 * The mount points box made for /etc/hosts, /etc/resolv.conf and /etc/hostname are not changes:
 * docker keeps them in a layer of its own under the container's.
 */
export function changesOf(ctx: EngineContext, state: ContainerRecord): Change[] {
  const spec = ctx.store.readSpec(state.id);
  // A --userns container's overlay keeps its metadata in user.* xattrs.
  const userxattr = spec.linux?.namespaces?.some((ns) => ns.type === 'user') ?? false;
  // network-attach.ts's ETC_FILES, not imported: it loads the network code, which diff needs not.
  const own = new Set(
    ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'].filter((path) =>
      spec.mounts?.some((m) => m.destination === path),
    ),
  );
  const { upperdir, lowerdirs } = state.overlay;
  return layerChanges(upperdir, lowerdirs, {
    userxattr,
    fuseOverlay: state.fuseOverlay,
    skip: (path) => own.has(path),
  });
}

export interface CommitOptions {
  /** The new image's name (repository[:tag]). */
  reference?: string;
  message?: string;
  author?: string;
  /** Freeze the container while its layer is read (default true, as docker). */
  pause?: boolean;
  /** Changes to the new image's config (docker commit --change), applied last. */
  changes?: (config: ImageConfig) => ImageConfig;
}

/**
 * Runs `fn` with the container frozen, so its files hold still. A locked marker says a commit
 * froze it: if this process dies, recovery thaws it. A container the user paused stays paused.
 */
async function frozen<T>(ctx: EngineContext, state: ContainerRecord, fn: () => Promise<T>): Promise<T> {
  // A rootless container without a cgroup has no freezer: its files are read as they are, as
  // docker's commit --pause=false does.
  if (!processAlive(state) || !hasCgroup(state) || (await isPaused(state.cgroupsPath))) return fn();
  const dir = ctx.store.dir(state.id);
  const marker = await takeCommitPauseMarker(dir);
  // Another commit has it frozen: commit along with it.
  if (marker === null) return fn();
  try {
    await freeze(state.cgroupsPath);
    try {
      return await fn();
    } finally {
      await thaw(state.cgroupsPath);
    }
  } finally {
    rmSync(commitPauseMarker(dir), { force: true });
    closeSync(marker);
  }
}

/** The container's writable layer becomes a new image on top of its image; resolves with its ID. */
export async function commitContainer(
  ctx: EngineContext,
  state: ContainerRecord,
  options: CommitOptions,
): Promise<string> {
  const { images } = ctx;
  if (!images.commit || !images.config)
    throw new EngineError('EINVAL', 'the image provider cannot commit images');
  if (!state.imageId) throw new EngineError('EINVAL', `container ${state.name} has no image to commit on`);
  const spec = ctx.store.readSpec(state.id);
  const base = await images.config(state.imageId);
  // The container's own settings become the new image's defaults, as in docker.
  const entrypoint = base.Entrypoint ?? [];
  const merged: ImageConfig = {
    ...base,
    Env: spec.process?.env ?? base.Env,
    WorkingDir: spec.process?.cwd ?? base.WorkingDir,
    Cmd: entrypoint.length > 0 ? state.command.slice(entrypoint.length) : state.command,
  };
  const config = options.changes ? options.changes(merged) : merged;
  const commit = async () => {
    // A container in a user namespace (--userns, rootless) keeps its overlay's opaque
    // directories in user.overlay.* xattrs.
    const layer = diffLayer(state.overlay.upperdir, {
      userxattr: spec.linux?.namespaces?.some((ns) => ns.type === 'user') ?? false,
      fuseOverlay: state.fuseOverlay,
    });
    // The layer's own error names the file (a running container's, changed while it was read);
    // the image store would only say that writing to it failed.
    let layerError: unknown;
    layer.once('error', (error) => {
      layerError = error;
    });
    try {
      return await images.commit!({
        layer,
        parent: state.imageId!,
        reference: options.reference,
        config,
        comment: options.message,
        author: options.author,
        createdBy: `box commit ${state.name}`,
      });
    } catch (error) {
      throw layerError ?? error;
    }
  };
  return options.pause === false ? commit() : frozen(ctx, state, commit);
}

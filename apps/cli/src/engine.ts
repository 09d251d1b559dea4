/** The engine box's commands call: one per process, on box's state root, with its image store. */
import { createEngine, type Engine, isRootless } from '@box/runtime/engine';
import { markCloseOnExecFrom } from '@box/sys';
import { imageProvider } from './images.js';

/** box's state directory: BOX_ROOT, or /var/lib/box. */
export function boxRoot(): string {
  return process.env.BOX_ROOT || '/var/lib/box';
}

let engine: Engine | undefined;

export function openEngine(): Engine {
  const root = boxRoot();
  engine ??= createEngine({
    root,
    // A rootless box's runtime directory, chosen by the process that entered its user namespace.
    ...(isRootless() && process.env.BOX_RUNTIME_DIR ? { runtimeDir: process.env.BOX_RUNTIME_DIR } : {}),
    images: imageProvider(root),
    // Detached containers belong to `box system service`, started on demand from this same program.
    service: {
      command: [process.execPath, process.argv[1]!, 'system', 'service'],
      // Fds inherited from the caller (its shell's `exec 300</etc`, say) stay with this process.
      beforeSpawn: () => markCloseOnExecFrom(3),
    },
  });
  return engine;
}

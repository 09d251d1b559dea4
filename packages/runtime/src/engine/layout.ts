/**
 * Where the engine keeps its state under its root (one root per engine; never read from the
 * environment here):
 *
 *   containers/ID/{state.json, config.json, lock, json.log, upper/, work/, rootfs/}
 *   names/NAME -> ID        volumes/NAME/{volume.json, _data/}
 *   events.jsonl            service.sock, service.lock, service.log
 *
 * The service's socket and lock are runtime files: under `runtimeDir` when one is given (a
 * rootless box's $XDG_RUNTIME_DIR/box), else in the root.
 */
import { join } from 'node:path';

export interface Layout {
  readonly root: string;
  readonly containers: string;
  readonly names: string;
  readonly volumes: string;
  readonly events: string;
  readonly serviceSocket: string;
  readonly serviceLock: string;
  readonly serviceLog: string;
}

export function layoutOf(root: string, runtimeDir = root): Layout {
  return {
    root,
    containers: join(root, 'containers'),
    names: join(root, 'names'),
    volumes: join(root, 'volumes'),
    events: join(root, 'events.jsonl'),
    serviceSocket: join(runtimeDir, 'box.sock'),
    serviceLock: join(runtimeDir, 'service.lock'),
    serviceLog: join(root, 'service.log'),
  };
}

export const containerDir = (layout: Layout, id: string): string => join(layout.containers, id);

/** What the engine's modules share: the state root, the records, the images, events, supervision. */
import type { EventLog } from './events.js';
import type { Layout } from './layout.js';
import type { ContainerStore } from './store.js';
import type { ImageProvider } from './types.js';

/** Who owns detached containers: the service (another process) or this process. */
export interface Supervision {
  /** Starts a created or exited container detached; resolves with its pid. */
  start(id: string): Promise<number>;
  /** Makes sure an owner adopts detached containers that still run without one. */
  adoptOrphans(): Promise<void>;
}

export interface EngineContext {
  readonly layout: Layout;
  readonly store: ContainerStore;
  readonly images: ImageProvider;
  readonly events: EventLog;
  readonly supervision: Supervision;
}

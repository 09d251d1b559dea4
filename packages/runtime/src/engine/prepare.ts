import { layoutOf } from './layout.js';
import { secureStateDir } from './state-dir.js';

/**
 * Makes a state root, or closes one that an older version or the user left open (see
 * state-dir.ts); once per root and process. The engine does it on first use; an image provider
 * storing under the same root calls it before it writes there.
 */
export function prepareStateRoot(root: string): void {
  secureStateDir(layoutOf(root));
}

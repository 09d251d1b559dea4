/**
 * The `box` program's entry. Node compiles the entry itself from source, before the loader of
 * the chunks' code caches (runtime/code-cache.ts) is in place; so the entry is only that loader,
 * and the program (main.ts, its command table and everything after it) is a chunk with a cache
 * of its own. Measured: about 5 ms of every box command.
 */
import { useCodeCache } from './runtime/code-cache.js';

useCodeCache();
import('./main.js').catch((error: unknown) => {
  process.stderr.write(`box: internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(125);
});

/**
 * The `box-runtime` program's entry, as `box`'s (../entry.ts): Node compiles the entry itself
 * from source, before the loader of the chunks' code caches (code-cache.ts) is in place; so the
 * entry is only that loader, and the program (main.ts) is a chunk with a cache of its own.
 */
import { useCodeCache } from './code-cache.js';

useCodeCache();
import('./main.js').catch((error: unknown) => {
  process.stderr.write(
    `box-runtime: internal error: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});

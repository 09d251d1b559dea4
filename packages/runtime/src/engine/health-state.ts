/**
 * Where a container's health is kept (`health.json` in its directory, written by its
 * supervisor's HealthMonitor, health.ts) and how commands read it: a module of its own so that
 * `ps` and `inspect` do not load the exec code the checks use.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineContext } from './context.js';
import type { HealthState } from './types.js';

export function healthFile(ctx: EngineContext, id: string): string {
  return join(ctx.store.dir(id), 'health.json');
}

/** The last recorded health of a container, if it has a health check and ran. */
export function readHealth(ctx: EngineContext, id: string): HealthState | undefined {
  try {
    return JSON.parse(readFileSync(healthFile(ctx, id), 'utf8')) as HealthState;
  } catch {
    return undefined;
  }
}

/** Forgets a container's health (a new start begins at "starting"). */
export function clearHealth(ctx: EngineContext, id: string): void {
  rmSync(healthFile(ctx, id), { force: true });
}

/**
 * A runc-compatible runtime (the OCI runtime spec's lifecycle over bundles), as a library: what
 * the `box-runtime` binary calls for podman, containerd and Kubernetes.
 *
 *     const runtime = new OciRuntime('/run/box-runtime');
 *     await runtime.create('web', { bundle: '/srv/bundle', pidFile: '/run/web.pid' });
 *     await runtime.start('web');
 *     console.log((await runtime.state('web')).status); // "running"
 *     await runtime.delete('web', { force: true });
 */
import type { Hook, HookKind, HookPlace } from './hooks.js';
import type { OciState } from './state.js';

export { features, specTemplate } from './features.js';
export type { Hook, HookKind, HookPlace, Hooks } from './hooks.js';
export { type OciCreateOptions, type OciExecOptions, OciRuntime } from './runtime.js';
export { checkId, type OciState, type OciStatus } from './state.js';

/**
 * Runs the OCI hooks of one kind in order with the state on their stdin (see hooks.ts). A
 * wrapper, so that a program that imports this module (box-runtime, once per command) loads the
 * hooks' code and the system calls it binds only when it runs some.
 */
export async function runHooks(
  kind: HookKind,
  hooks: Hook[] | undefined,
  state: OciState,
  place?: HookPlace,
): Promise<void> {
  const hooksModule = await import('./hooks.js');
  return hooksModule.runHooks(kind, hooks, state, place);
}

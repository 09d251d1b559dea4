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
export { features, specTemplate } from './features.js';
export { type Hook, type HookKind, type Hooks, runHooks } from './hooks.js';
export { type OciCreateOptions, type OciExecOptions, OciRuntime } from './runtime.js';
export { checkId, type OciState, type OciStatus } from './state.js';

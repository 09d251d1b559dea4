export { type Challenge, parseChallenges } from './auth.js';
export type { Credentials } from './credentials.js';
export { registryHostOf } from './hosts.js';
export { registryLogin, registryLogout } from './login.js';
export type { LayerStatus, ProgressEvent, RegistryOptions } from './options.js';
export { type PullOptions, type PullResult, pullImage } from './pull.js';
export { type PushResult, pushImage } from './push.js';
export { listTags } from './tags.js';
export type { Timeouts } from './transport.js';

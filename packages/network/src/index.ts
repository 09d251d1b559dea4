export * from './firewall/index.js';
export * from './ipam/index.js';

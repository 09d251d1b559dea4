export * from './ipam/index.js';

export { isNetlinkError, NetlinkError, type NetlinkErrorDetails } from './netlink/errors.js';

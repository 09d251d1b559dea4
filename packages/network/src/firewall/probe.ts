/**
 * Whether an nftables chain exists, asked of the kernel over nfnetlink (NFT_MSG_GETCHAIN): a
 * few tens of microseconds, where `nft list chain` is a process and some milliseconds. It lets
 * box notice, on every container start, that its rules were flushed (`nft flush ruleset`, a
 * firewall manager reloading) and put them back.
 */
import { isNetlinkError } from '../netlink/errors.js';
import { attrString } from '../netlink/message.js';
import { NetlinkSocket } from '../netlink/socket.js';

const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_GETCHAIN = 4;
const NFPROTO_IPV4 = 2;
const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;

/** `chain` in the `ip` table `table`: true when it is there, false when it (or the table) is not. */
export function ipChainExists(table: string, chain: string, options: { netns?: string } = {}): boolean {
  const socket = NetlinkSocket.open({
    protocol: NETLINK_NETFILTER,
    ...(options.netns ? { netns: { path: `/run/netns/${options.netns}` } } : {}),
  });
  try {
    // struct nfgenmsg: family, version (NFNETLINK_V0), resource id (big endian, 0).
    const header = Buffer.from([NFPROTO_IPV4, 0, 0, 0]);
    socket.get(
      (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN,
      [header, attrString(NFTA_CHAIN_TABLE, table), attrString(NFTA_CHAIN_NAME, chain)],
      `look up nftables chain ip ${table} ${chain}`,
    );
    return true;
  } catch (error) {
    if (isNetlinkError(error, 'ENOENT')) return false;
    throw error;
  } finally {
    socket.close();
  }
}

/**
 * The client that a TCP peer address stands for, as the failed-authentication limiter counts them:
 * an IPv4 address by itself (also when a dual-stack socket reports it as `::ffff:a.b.c.d`), an
 * IPv6 address by its /64. One host or one site normally holds a whole /64 and may send from any
 * address in it, so counting IPv6 addresses one by one gave every guess a fresh budget.
 */
import { isIPv6 } from 'node:net';

export function clientKey(address: string): string {
  const zone = address.indexOf('%');
  const a = zone < 0 ? address : address.slice(0, zone);
  if (!isIPv6(a)) return a;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return mapped[1];
  const [head, tail] = a.split('::');
  const groups = (s: string | undefined): string[] => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const h = groups(head);
  const full = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - groups(tail).length).fill('0'), ...groups(tail)];
  return `${full.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

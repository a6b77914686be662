/**
 * The Host check against DNS rebinding (issue 19, item 15): which bind addresses turn it on, which
 * Host names pass. Through the real Node server in test/node/server.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { hostAllowed, hostAllowList, isLoopback } from '../src/host-check.js';

describe('isLoopback', () => {
  it('counts 127.0.0.0/8, ::1 and localhost as loopback, nothing else', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '127.10.0.1', '127.0.10.1', '127.0.0.10', '127.255.255.254', 'localhost', 'LOCALHOST', '[::1]', '::1', 'localhost.', '0:0:0:0:0:0:0:1']) {
      expect({ host, loopback: isLoopback(host) }).toEqual({ host, loopback: true });
    }
    for (const host of ['128.0.0.1', '10.0.0.1', '127.0.0.1.nip.io', 'x127.0.0.1', 'localhost.example.com', '[::2]', '0.0.0.0', '::', 'example.com', '[fe80::1]', '[[::1]', '[::1]]']) {
      expect({ host, loopback: isLoopback(host) }).toEqual({ host, loopback: false });
    }
  });
});

describe('hostAllowList', () => {
  it('is on only on a loopback address with nothing asking for credentials, and * turns it off', () => {
    expect(hostAllowList('127.0.0.1', false, [])).toEqual([]);
    expect(hostAllowList('::1', false, ['Proxy.Example'])).toEqual(['proxy.example']);
    expect(hostAllowList('0.0.0.0', false, [])).toBeUndefined();
    expect(hostAllowList('192.0.2.7', false, [])).toBeUndefined();
    expect(hostAllowList('127.0.0.1', true, [])).toBeUndefined();
    expect(hostAllowList('127.0.0.1', false, ['*'])).toBeUndefined();
  });
});

describe('hostAllowed', () => {
  it('answers names that cannot be rebound (localhost, *.localhost, IP literals) and the listed ones, exactly', () => {
    const listed = ['proxy.example'];
    for (const name of ['localhost', 'LOCALHOST', 'localhost.', 'grafana.localhost', '127.0.0.1', '10.1.2.3', '192.168.100.200', '[::1]', '[2001:db8::1]', 'proxy.example', 'PROXY.example']) {
      expect({ name, ok: hostAllowed(name, listed) }).toEqual({ name, ok: true });
    }
    for (const name of ['evil.example', 'localhost.evil.example', 'evillocalhost', '127.0.0.1.nip.io', 'evil.1.2.3.4', '[evil', 'evil]', 'sub.proxy.example', 'proxy.example.evil', 'xproxy.example', '']) {
      expect({ name, ok: hostAllowed(name, listed) }).toEqual({ name, ok: false });
    }
  });
});

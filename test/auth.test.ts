/**
 * Who may read, runtime-free: the guard over real Hono requests, with a bearer token, bcrypt
 * basic-auth users (real hashes), both, or neither.
 */
import bcrypt from 'bcryptjs';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createGuard, type Credentials } from '../src/auth.js';
import { BasicAuthUsers } from '../src/basic-auth.js';

const TOKEN = 'guard-token-0123456789abcdef';
const users = new BasicAuthUsers({ prometheus: bcrypt.hashSync('pw', 4) });
const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

function guarded(credentials: Credentials) {
  const guard = createGuard(credentials);
  const app = new Hono();
  app.use('/private', guard.middleware);
  app.get('/private', (c) => c.text('ok'));
  app.get('/probe', async (c) => c.text(String(await guard.authenticated(c))));
  const ask = async (path: string, authorization?: string) => {
    const res = await app.request(path, authorization ? { headers: { Authorization: authorization } } : {});
    return { status: res.status, body: await res.text(), challenge: res.headers.get('www-authenticate') };
  };
  return ask;
}

describe('createGuard', () => {
  it('without credentials lets everything through', async () => {
    const ask = guarded({});
    expect((await ask('/private')).status).toBe(200);
    expect((await ask('/probe')).body).toBe('true');
    expect((await ask('/private', 'Bearer whatever-token-0123456789')).status).toBe(200);
  });

  it('with a token only: Hono bearerAuth answers (401/400 with a Bearer challenge)', async () => {
    const ask = guarded({ token: TOKEN });
    expect((await ask('/private', `Bearer ${TOKEN}`)).status).toBe(200);
    expect(await ask('/private')).toMatchObject({ status: 401, challenge: 'Bearer realm="loki-metrics"' });
    expect(await ask('/private', `Bearer ${TOKEN}x`)).toMatchObject({ status: 401, challenge: 'Bearer error="invalid_token"' });
    expect(await ask('/private', basic('prometheus', 'pw'))).toMatchObject({ status: 400 });
    expect((await ask('/probe')).body).toBe('false');
  });

  it('with users only: basic auth; a token is no credential then', async () => {
    const ask = guarded({ basicUsers: () => users });
    expect((await ask('/private', basic('prometheus', 'pw'))).status).toBe(200);
    for (const authorization of [undefined, basic('prometheus', 'no'), basic('other', 'pw'), `Bearer ${TOKEN}`]) {
      expect(await ask('/private', authorization)).toMatchObject({ status: 401, challenge: 'Basic realm="loki-metrics"' });
    }
  });

  it('with both: either passes; no credentials get both challenges; users can come and go', async () => {
    let current: BasicAuthUsers | undefined = users;
    const ask = guarded({ token: TOKEN, basicUsers: () => current });
    expect((await ask('/private', basic('prometheus', 'pw'))).status).toBe(200);
    expect((await ask('/private', `Bearer ${TOKEN}`)).status).toBe(200);
    expect((await ask('/private', `bearer ${TOKEN}`)).status).toBe(200);
    expect((await ask('/private', basic('prometheus', 'no'))).status).toBe(401);
    const none = await ask('/private');
    expect(none.status).toBe(401);
    expect(none.challenge).toBe('Basic realm="loki-metrics", Bearer realm="loki-metrics"');
    expect(none.body).toBe('Unauthorized');
    // The scheme is the header's first word: anything else is no credential at all.
    expect(await ask('/private', `1 Bearer ${TOKEN}`)).toMatchObject({ status: 401, challenge: 'Basic realm="loki-metrics", Bearer realm="loki-metrics"' });
    expect((await ask('/private', `Digest ${TOKEN}`)).status).toBe(401);
    current = undefined; // the web config lost its users: the token alone
    expect((await ask('/private', basic('prometheus', 'pw'))).status).toBe(400);
    expect((await ask('/private', `Bearer ${TOKEN}`)).status).toBe(200);
  });

  it('authenticated() says whether a request would pass without answering it, and lets real errors through', async () => {
    const ask = guarded({ token: TOKEN });
    expect((await ask('/probe', `Bearer ${TOKEN}`)).body).toBe('true');
    expect((await ask('/probe', `Bearer ${TOKEN}x`)).body).toBe('false');
    const broken = guarded({
      basicUsers: () => {
        throw new Error('users unavailable');
      },
    });
    expect((await broken('/probe')).status).toBe(500);
  });
});

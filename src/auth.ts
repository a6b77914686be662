import type { Context, MiddlewareHandler } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { bearerAuth } from 'hono/bearer-auth';
import { HTTPException } from 'hono/http-exception';
import type { BasicAuthUsers } from './basic-auth.js';

/** The realm every challenge names. */
export const REALM = 'loki-metrics';

/** Who may read: the scrape token, basic-auth users (a web config), both, or neither (open). */
export interface Credentials {
  readonly token?: string;
  /** The current basic-auth users; a reloaded web config can change them, so asked per request. */
  readonly basicUsers?: () => BasicAuthUsers | undefined;
  /** Who is asking, for the per-client bound on bcrypt checks (BasicAuthUsers). */
  readonly clientOf?: (c: Context) => string | undefined;
}

export interface Guard {
  /** Passes a request with valid credentials (or any request when none are configured); 401/400 otherwise. */
  readonly middleware: MiddlewareHandler;
  /** Whether the request would pass, without answering it (for /health's status-only answer). */
  authenticated(c: Context): Promise<boolean>;
}

/**
 * One credential per request, as HTTP allows one `Authorization` header: a Bearer token or Basic
 * user and password. With both configured, either passes (Prometheus sends one or the other).
 * Token-only behaviour is exactly Hono's bearerAuth (constant-time comparison, RFC 6750
 * challenges); basic auth is Hono's basicAuth over bcrypt hashes.
 */
export function createGuard(credentials: Credentials): Guard {
  const bearer = credentials.token ? bearerAuth({ token: credentials.token, realm: REALM }) : undefined;
  const basicFor = new WeakMap<BasicAuthUsers, MiddlewareHandler>();
  const basic = (users: BasicAuthUsers): MiddlewareHandler => {
    let middleware = basicFor.get(users);
    if (!middleware) {
      middleware = basicAuth({ realm: REALM, verifyUser: (user, password, c) => users.verify(user, password, credentials.clientOf?.(c)) });
      basicFor.set(users, middleware);
    }
    return middleware;
  };

  const middleware: MiddlewareHandler = async (c, next) => {
    const users = credentials.basicUsers?.();
    if (!users) return bearer ? bearer(c, next) : next();
    if (!bearer) return basic(users)(c, next);
    // Only the scheme is looked at here; the credentials themselves go to the two middlewares.
    const scheme = /^\s*([A-Za-z]+)/.exec(c.req.header('Authorization') ?? '')?.[1]?.toLowerCase();
    if (scheme === 'bearer') return bearer(c, next);
    if (scheme === 'basic') return basic(users)(c, next);
    const res = new Response('Unauthorized', {
      status: 401,
      headers: [
        ['WWW-Authenticate', `Basic realm="${REALM}"`],
        ['WWW-Authenticate', `Bearer realm="${REALM}"`],
      ],
    });
    throw new HTTPException(401, { res });
  };

  return {
    middleware,
    async authenticated(c) {
      let ok = false;
      try {
        await middleware(c, async () => {
          ok = true;
        });
      } catch (error) {
        if (!(error instanceof HTTPException)) throw error;
      }
      return ok;
    },
  };
}

/**
 * The headers every response of every app carries, put there without costing the response its
 * fast path: @hono/node-server writes a string body straight to the socket only while the Response
 * is untouched, and a header Hono adds after the handler has answered makes it copy the response
 * into a stream (a tenth of a cached scrape's CPU). So the header goes into the context before the
 * handler runs, where Hono builds it into the response; a thrown HTTPException's own response, which
 * no context builds, gets it here.
 */
import type { MiddlewareHandler } from 'hono';
import type { HTTPException } from 'hono/http-exception';

export const EVERY_RESPONSE: Readonly<Record<string, string>> = { 'X-Content-Type-Options': 'nosniff' };

/** Middleware, first on an app: the headers for whatever the handlers answer with `c.*`. */
export const everyResponseHeaders: MiddlewareHandler = async (c, next) => {
  for (const [name, value] of Object.entries(EVERY_RESPONSE)) c.header(name, value);
  await next();
};

/** An HTTPException's response (the guards' 401s) with the headers every response carries. */
export function exceptionResponse(error: HTTPException): Response {
  const res = error.getResponse();
  for (const [name, value] of Object.entries(EVERY_RESPONSE)) res.headers.set(name, value);
  return res;
}

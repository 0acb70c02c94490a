/**
 * The request a piece of code runs for, carried through async calls (AsyncLocalStorage), so that
 * every log line written while serving a request carries its id, whichever module writes it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  reqId: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The id of the request being served, if any. */
export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.reqId;
}

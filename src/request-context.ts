/**
 * The request a piece of code runs for, carried through async calls (AsyncLocalStorage), so that
 * every log line written while serving a request carries its id, whichever module writes it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  reqId: string;
  /** For the access-log line, filled in by the routes as they learn them (never a token). */
  access?: RequestFacts;
}

/** What a request was about: who (runner name), where (project, key), and how its token fared. */
export interface RequestFacts {
  /** The runner (profile) name the token maps to, from the configuration. */
  runner?: string;
  project?: string;
  key?: string;
  /** ok | missing (no Authorization) | not_bearer (no "Bearer " prefix) | unknown (no such token) | anonymous */
  auth?: string;
}

/** Records facts about the request being served, for its access-log line. */
export function noteRequest(facts: RequestFacts): void {
  const store = requestContext.getStore();
  if (store) store.access = { ...store.access, ...facts };
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The id of the request being served, if any. */
export function currentRequestId(): string | undefined {
  return requestContext.getStore()?.reqId;
}

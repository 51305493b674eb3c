/**
 * The typed fetch layer: openapi-fetch over the types generated from contract/openapi.json, so
 * every path, parameter, body and answer is checked by the compiler against the contract.
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";
import { ApiError, TransportError } from "./errors.js";

/** The contract's schemas (`Schemas["AuthTokens"]`, …). */
export type Schemas = components["schemas"];
/** A client of the whole API. */
export type Api = Client<paths>;
/** Every path of the contract. */
export type ApiPath = keyof paths;
/** What sends a request: `globalThis.fetch` or a wrapper of it (tests count requests with one). */
export type Transport = (request: Request) => Promise<Response>;

/** A typed client of the API at `baseUrl` (the worker's origin, without `/api/v1`). */
export function createApi(baseUrl: string, transport: Transport): Api {
  return createClient<paths>({ baseUrl: trimSlash(baseUrl), fetch: transport });
}

/** The default transport. Bound lazily so a test or an app can replace `globalThis.fetch`. */
export const defaultTransport: Transport = (request) => globalThis.fetch(request);

/** What openapi-fetch answers. */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/**
 * Awaits an openapi-fetch call: its data, or an {@link ApiError} for a non-2xx answer (code,
 * status, request id, details, `Retry-After`), or a {@link TransportError} when no answer came.
 */
export async function call<T>(pending: Promise<Answer<T>>): Promise<{ data: T; response: Response }> {
  let answer: Answer<T>;
  try {
    answer = await pending;
  } catch (e) {
    if (e instanceof ApiError || e instanceof TransportError) throw e;
    throw new TransportError(`no answer from the API: ${describe(e)}`, e);
  }
  if (!answer.response.ok) throw ApiError.fromResponse(answer.response, answer.error);
  return { data: answer.data as T, response: answer.response };
}

/** A WebSocket URL for `path` of the API at `baseUrl` (`http` → `ws`, `https` → `wss`). */
export function wsUrl(baseUrl: string, path: ApiPath | `/api/v1/${string}`, query?: Record<string, string>): string {
  const url = new URL(trimSlash(baseUrl) + path);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
  return url.toString();
}

/** Identity body serializer: raw bytes go out as they are (`application/octet-stream`). */
export const rawBody = (body: unknown): BodyInit => body as BodyInit;

/**
 * The contract describes octet-stream bodies as arrays of bytes; the kit sends the bytes
 * themselves (with {@link rawBody}), so this only tells the compiler what the contract calls them.
 */
export function asContractBytes(bytes: Uint8Array): number[] {
  return bytes as unknown as number[];
}

export function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message} (${cause.message})` : e.message;
  }
  return String(e);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

/** Resolves after `ms` milliseconds (or at once when `signal` aborts). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Exponential backoff with full jitter: attempt 0 → up to `base`, doubling, capped at `max`. */
export function backoff(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, base * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

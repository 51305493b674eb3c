/**
 * WebSockets in Node and in the browser. Node (≥ 20, which has no global WebSocket) uses the
 * `ws` package and authenticates with the `Authorization` header; a browser — Electron's
 * renderer — cannot set headers, so it fetches a single-use ticket (`POST /auth/ws-ticket`)
 * and passes it as `?ticket=`.
 */
import { TransportError } from "./errors.js";
import { wsUrl, type ApiPath } from "./http.js";
import type { Session } from "./session.js";

/** The part of the WebSocket API the kit uses (browser `WebSocket` and `ws` both have it). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor: the browser's (`url` only) or `ws`'s (`url`, `protocols`, `options` with `headers`). */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: { headers?: Record<string, string> },
) => SocketLike;

/** How a socket authenticates: the bearer header (Node) or a single-use ticket (browsers). */
export type SocketAuth = "header" | "ticket";

/** Where and how to open sockets. */
export interface SocketOptions {
  /** The constructor (default: `ws` in Node, the global `WebSocket` in a browser). */
  webSocket?: WebSocketConstructor;
  /** The authentication (default: `header` in Node, `ticket` in a browser). */
  auth?: SocketAuth;
}

/** The handshake was refused (the server answered HTTP instead of upgrading). */
export class HandshakeError extends TransportError {
  constructor(readonly status: number | undefined, message: string) {
    super(message);
    this.name = "HandshakeError";
  }
}

const OPEN = 1;

/** Whether this runs in Node (not in a browser or Electron's renderer). */
export function inNode(): boolean {
  return (
    typeof process !== "undefined" &&
    typeof process.versions?.node === "string" &&
    typeof (globalThis as { window?: unknown }).window === "undefined"
  );
}

async function constructorFor(options: SocketOptions): Promise<WebSocketConstructor> {
  if (options.webSocket) return options.webSocket;
  if (inNode()) {
    const ws = await import("ws");
    return ws.WebSocket as unknown as WebSocketConstructor;
  }
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!global) throw new TransportError("no WebSocket implementation: pass options.webSocket");
  return global;
}

/**
 * Opens an authenticated socket to `path`; resolves once it is open. `onMessage` is attached
 * before the handshake, so frames the server sends at once are not lost.
 */
export async function openSocket(
  session: Session,
  path: ApiPath | `/api/v1/${string}`,
  options: SocketOptions,
  onMessage: (data: unknown) => void,
): Promise<SocketLike> {
  const Ctor = await constructorFor(options);
  const auth = options.auth ?? (inNode() ? "header" : "ticket");
  let socket: SocketLike;
  if (auth === "ticket") {
    socket = new Ctor(wsUrl(session.baseUrl, path, { ticket: await session.wsTicket() }));
  } else {
    const token = await session.accessToken();
    socket = new Ctor(wsUrl(session.baseUrl, path), undefined, { headers: { authorization: `Bearer ${token}` } });
  }
  socket.onmessage = (event) => onMessage(event.data);
  return new Promise<SocketLike>((resolve, reject) => {
    socket.onopen = () => {
      socket.onopen = socket.onerror = socket.onclose = null;
      resolve(socket);
    };
    socket.onerror = (event) => {
      socket.onopen = socket.onerror = socket.onclose = null;
      const message = (event as { message?: string; error?: Error }).message ?? (event as { error?: Error }).error?.message ?? "";
      // `ws` reports a refused handshake as "Unexpected server response: 404".
      const status = /Unexpected server response: (\d{3})/.exec(message)?.[1];
      reject(new HandshakeError(status ? Number(status) : undefined, `WebSocket to ${path} failed${message ? `: ${message}` : ""}`));
    };
    socket.onclose = (event) => {
      socket.onopen = socket.onerror = socket.onclose = null;
      reject(new HandshakeError(undefined, `WebSocket to ${path} closed during the handshake (${event.code})`));
    };
  });
}

/** Sends a JSON frame if the socket is open; returns whether it was sent. */
export function sendJson(socket: SocketLike, frame: unknown): boolean {
  if (socket.readyState !== OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

/** The JSON object of a text frame, or undefined. */
export function parseFrame(data: unknown): Record<string, unknown> | undefined {
  let text: string;
  if (typeof data === "string") text = data;
  else if (data instanceof ArrayBuffer) text = new TextDecoder().decode(data);
  else if (ArrayBuffer.isView(data)) text = new TextDecoder().decode(data as Uint8Array);
  else return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Drops a connection without the close handshake (`ws`: `terminate()`; a browser: close code
 * 4000). Never 1000/1001: the server treats those as "the user is done" and cancels the
 * socket's request, while a dropped connection leaves it running for a resume.
 */
export function drop(socket: SocketLike): void {
  const terminate = (socket as { terminate?: () => void }).terminate;
  if (typeof terminate === "function") terminate.call(socket);
  else socket.close(4000, "connection lost");
}

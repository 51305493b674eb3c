/**
 * Sessions: register, log in, refresh, log out — and an authorized transport every other module
 * sends its requests through.
 *
 * - **Single-flight refresh.** However many requests find the access token expired or refused
 *   (401) at the same time, one `POST /auth/refresh` is sent; all of them wait for it and retry
 *   once with the new token.
 * - **Rotation.** Refresh tokens are single use. A store shared by several windows or processes
 *   is read again before each refresh: if another one already rotated the pair, this session
 *   adopts it instead of presenting a rotated token (which the server treats as theft and
 *   answers by revoking the whole session once it is more than 10 s old). A refresh whose answer
 *   was lost in transit is retried with the same token only within `rotationGraceMs` (default
 *   8 s, inside the server's 10 s grace, during which the same token yields another fresh pair).
 * - **Persistence** through a pluggable {@link TokenStore} (memory by default; a file store for
 *   Node; the desktop app's keychain in production).
 * - Refusals surface as {@link ApiError}s; a `rate_limited` one carries `retryAfter`.
 */
import { ApiError, TransportError } from "./errors.js";
import { call, createApi, defaultTransport, describe, sleep, type Api, type Schemas, type Transport } from "./http.js";

/** A token pair, as the API issues it (`expires_at`: the access token's expiry, epoch ms). */
export type Tokens = Schemas["AuthTokens"];
/** `GET /auth/me`. */
export type UserProfile = Schemas["UserProfile"];

/** Where a session keeps its tokens between runs (the OS keychain in the desktop app). */
export interface TokenStore {
  /** The saved pair, or `null`. */
  load(): Promise<Tokens | null>;
  /** Saves the pair (`null`: signed out, forget it). */
  save(tokens: Tokens | null): Promise<void>;
}

/** Keeps tokens in memory (one process; share one instance between sessions to share them). */
export class MemoryTokenStore implements TokenStore {
  private tokens: Tokens | null;
  constructor(tokens: Tokens | null = null) {
    this.tokens = tokens;
  }
  async load(): Promise<Tokens | null> {
    return this.tokens;
  }
  async save(tokens: Tokens | null): Promise<void> {
    this.tokens = tokens;
  }
}

/** Keeps tokens in a JSON file readable only by its owner (Node). Writes are atomic renames. */
export class FileTokenStore implements TokenStore {
  constructor(readonly path: string) {}
  async load(): Promise<Tokens | null> {
    const { readFile } = await import("node:fs/promises");
    try {
      const parsed = JSON.parse(await readFile(this.path, "utf8")) as Tokens | null;
      return parsed && typeof parsed.refresh_token === "string" ? parsed : null;
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return null;
      throw e;
    }
  }
  async save(tokens: Tokens | null): Promise<void> {
    const { writeFile, rename, rm } = await import("node:fs/promises");
    if (tokens === null) {
      await rm(this.path, { force: true });
      return;
    }
    const tmp = `${this.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, JSON.stringify(tokens), { mode: 0o600 });
    await rename(tmp, this.path);
  }
}

/** Why a session ended. */
export type SignedOutReason = "logout" | ApiError;

/** Options of {@link Session.open}. */
export interface SessionOptions {
  /** The API's origin, e.g. `https://api.adiuva.app` (paths start with `/api/v1`). */
  baseUrl: string;
  /** Where tokens persist (default: memory). */
  store?: TokenStore;
  /** What sends requests (default `globalThis.fetch`). */
  transport?: Transport;
  /** Refresh this long before the access token expires (default 30 s). */
  refreshMarginMs?: number;
  /** Retry a refresh whose answer was lost only this long after the first try (default 8 s). */
  rotationGraceMs?: number;
  /** The clock (epoch ms; default `Date.now`). */
  now?: () => number;
  /** Called once when the session ends (logout, or the server refused the refresh token). */
  onSignedOut?: (reason: SignedOutReason) => void;
}

/** A signed-in (or not yet signed-in) user of the API. */
export class Session {
  /** The API's origin. */
  readonly baseUrl: string;
  /** Typed client whose every request carries the access token (refreshed as needed). */
  readonly api: Api;
  /** Typed client without credentials (register, login, refresh). */
  readonly publicApi: Api;
  /** How many refresh requests this session has sent. */
  refreshes = 0;

  private readonly store: TokenStore;
  private readonly transport: Transport;
  private readonly refreshMarginMs: number;
  private readonly rotationGraceMs: number;
  private readonly now: () => number;
  private readonly onSignedOut: ((reason: SignedOutReason) => void) | undefined;
  private current: Tokens | null = null;
  private refreshing: Promise<Tokens> | undefined;

  private constructor(options: SessionOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.store = options.store ?? new MemoryTokenStore();
    this.transport = options.transport ?? defaultTransport;
    this.refreshMarginMs = options.refreshMarginMs ?? 30_000;
    this.rotationGraceMs = options.rotationGraceMs ?? 8_000;
    this.now = options.now ?? Date.now;
    this.onSignedOut = options.onSignedOut;
    this.publicApi = createApi(this.baseUrl, this.transport);
    this.api = createApi(this.baseUrl, this.fetch);
  }

  /** A session over `options.store`, signed in if the store holds tokens. */
  static async open(options: SessionOptions): Promise<Session> {
    const session = new Session(options);
    session.current = await session.store.load();
    return session;
  }

  /** Whether the session holds tokens. */
  get signedIn(): boolean {
    return this.current !== null;
  }

  /** The current pair (treat as secret). */
  get tokens(): Tokens | null {
    return this.current;
  }

  /** Creates an account and signs in. */
  async register(email: string, password: string): Promise<Tokens> {
    const { data } = await call(this.publicApi.POST("/api/v1/auth/register", { body: { email, password } }));
    await this.adopt(data);
    return data;
  }

  /** Signs in. A `rate_limited` refusal (too many failures) carries `retryAfter`. */
  async login(email: string, password: string): Promise<Tokens> {
    const { data } = await call(this.publicApi.POST("/api/v1/auth/login", { body: { email, password } }));
    await this.adopt(data);
    return data;
  }

  /** The signed-in user. */
  async me(): Promise<UserProfile> {
    return (await call(this.api.GET("/api/v1/auth/me"))).data;
  }

  /** A single-use ticket for a browser WebSocket (`?ticket=`), valid about 30 s. */
  async wsTicket(): Promise<string> {
    return (await call(this.api.POST("/api/v1/auth/ws-ticket"))).data.ticket;
  }

  /** Ends this session on the server (its refresh-token family) and forgets the tokens. */
  async logout(): Promise<void> {
    const tokens = this.current;
    try {
      if (tokens) {
        await call(this.api.POST("/api/v1/auth/logout", { body: { refresh_token: tokens.refresh_token } }));
      }
    } finally {
      await this.signOut("logout");
    }
  }

  /** Ends every session of the user (all devices); returns how many were revoked. */
  async logoutAll(): Promise<number> {
    try {
      return (await call(this.api.POST("/api/v1/auth/logout-all"))).data.revoked;
    } finally {
      await this.signOut("logout");
    }
  }

  /**
   * A fresh pair. Concurrent calls share one request (single flight). Another session sharing
   * the store may already have rotated the pair: then its pair is adopted. A refusal (401)
   * signs the session out; a lost answer is retried with the same token within the grace.
   */
  refresh(): Promise<Tokens> {
    this.refreshing ??= this.rotate().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** The access token, refreshed first when it expires within the margin. */
  async accessToken(): Promise<string> {
    if (this.refreshing) await this.refreshing;
    const tokens = this.current ?? (await this.store.load());
    if (!tokens) throw notSignedIn();
    this.current = tokens;
    if (this.expiresSoon(tokens)) return (await this.refresh()).access_token;
    return tokens.access_token;
  }

  /**
   * The authorized transport: sends `request` with the access token; on a 401, refreshes once
   * (shared with every other request refused meanwhile) and retries once.
   */
  readonly fetch = async (request: Request): Promise<Response> => {
    const retry = request.clone();
    const token = await this.accessToken();
    const response = await this.send(withBearer(request, token));
    if (response.status !== 401) return response;
    if (this.current?.access_token === token) {
      try {
        await this.refresh();
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return response;
        throw e;
      }
    }
    const fresh = this.current?.access_token;
    if (!fresh) return response;
    return this.send(withBearer(retry, fresh));
  };

  /** Sends through the transport; a request that got no answer becomes a {@link TransportError}. */
  private async send(request: Request): Promise<Response> {
    try {
      return await this.transport(request);
    } catch (e) {
      if (e instanceof TransportError) throw e;
      throw new TransportError(`no answer from ${request.method} ${new URL(request.url).pathname}: ${describe(e)}`, e);
    }
  }

  private expiresSoon(tokens: Tokens): boolean {
    return tokens.expires_at - this.now() <= this.refreshMarginMs;
  }

  private async rotate(): Promise<Tokens> {
    const stored = await this.store.load();
    if (stored && stored.refresh_token !== this.current?.refresh_token) {
      // Another window or process rotated the pair: never present the old token again.
      this.current = stored;
      if (!this.expiresSoon(stored)) return stored;
    }
    const presented = this.current?.refresh_token;
    if (!presented) throw notSignedIn();
    const started = this.now();
    for (let attempt = 0; ; attempt++) {
      try {
        this.refreshes++;
        const { data } = await call(
          this.publicApi.POST("/api/v1/auth/refresh", { body: { refresh_token: presented } }),
        );
        await this.adopt(data);
        return data;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          await this.signOut(e);
          throw e;
        }
        // The server may have rotated the token and the answer got lost: presenting the same
        // token again is safe only inside the server's 10 s grace.
        const withinGrace = this.now() - started < this.rotationGraceMs;
        if (e instanceof TransportError && withinGrace && attempt < 4) {
          await sleep(100 * 2 ** attempt);
          continue;
        }
        throw e;
      }
    }
  }

  private async adopt(tokens: Tokens): Promise<void> {
    this.current = tokens;
    await this.store.save(tokens);
  }

  private async signOut(reason: SignedOutReason): Promise<void> {
    const was = this.current;
    this.current = null;
    await this.store.save(null);
    if (was) this.onSignedOut?.(reason);
  }
}

function notSignedIn(): ApiError {
  return new ApiError({ code: "unauthorized", message: "not signed in", status: 401 });
}

function withBearer(request: Request, token: string): Request {
  const headers = new Headers(request.headers);
  headers.set("authorization", `Bearer ${token}`);
  return new Request(request, { headers });
}

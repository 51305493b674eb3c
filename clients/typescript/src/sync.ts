/**
 * Record sync between the user's devices over `/api/v1/storage/records`: the app's rows,
 * each encrypted with the {@link BlobCipher} before upload and identified by a stable client
 * `key` (e.g. `tasks:42`) carried in the envelope's authenticated label.
 *
 * - **Pull** pages through the listing by `cursor` (first run: everything, or `updated_since`),
 *   fetches and decrypts what changed, and reports tombstones of deleted records. The cursor
 *   persists in a {@link SyncStateStore} with the ETag of every record this device knows.
 *   Tombstones are listed for 30 days; when the server answers `X-Sync-Reset: true` (a
 *   deletion after this device's cursor is no longer listed), the pull starts over from the
 *   beginning and reports every record this device knows that the full listing lacks as
 *   deleted (`reset: true` in the result).
 * - **Push** (`put`, `remove`) sends `If-Match` with the ETag last seen. A `412` means another
 *   device changed the record meanwhile: the current version is fetched and handed to the
 *   caller's `merge`, whose result is written with the new ETag (repeated if the race goes on).
 * - **Live notices**: {@link Sync.subscribe} follows `GET /api/v1/sync/stream` (a WebSocket of
 *   `{"type":"changed","kind","cursor"}` after another device's write) and pulls on each
 *   record notice. Servers without it answer 404: the subscription then polls (with
 *   `pollIntervalMs`) or stays off.
 */
import { checksum } from "./crypto/checksum.js";
import type { BlobCipher } from "./crypto/blob.js";
import { ApiError, IntegrityError } from "./errors.js";
import { backoff, call, sleep, type Schemas } from "./http.js";
import { toBase64 } from "./bytes.js";
import type { Session } from "./session.js";
import { HandshakeError, openSocket, parseFrame, type SocketLike, type SocketOptions } from "./ws.js";

/** One record's listing entry. */
export type RecordMeta = Schemas["RecordMeta"];

/** A record as this device knows it. */
export interface SyncedRecord {
  /** The server's id. */
  id: string;
  table: string;
  /** The app's stable key of the row. */
  key: string;
  etag: string;
  /** The decrypted bytes. */
  data: Uint8Array;
}

/** A tombstone seen by a pull. */
export interface DeletedRecord {
  id: string;
  table: string;
  /** The key, when this device knew the record. */
  key: string | undefined;
}

/** Two devices changed one record. */
export interface Conflict {
  table: string;
  key: string;
  id: string;
  /** What this device wanted to write (`null`: it wanted to delete the record). */
  local: Uint8Array | null;
  /** What the server holds now (`null`: another device deleted it). */
  remote: Uint8Array | null;
}

/** Resolves a {@link Conflict}: the bytes to write, or `null` to keep the server's version (or its deletion). */
export type Merge = (conflict: Conflict) => Promise<Uint8Array | null> | Uint8Array | null;

/** What a pull found. */
export interface PullResult {
  changed: SyncedRecord[];
  deleted: DeletedRecord[];
  /** Listing pages read. */
  pages: number;
  cursor: string | undefined;
  /** The server said deletions since this device's position are no longer listed: this pull reconciled with a full listing. */
  reset: boolean;
}

/** This device's sync state. */
export interface SyncState {
  cursor?: string | undefined;
  /** By server id. */
  records: Record<string, { table: string; key: string; etag: string }>;
}

/** Where the sync state persists (the app's own database in production). */
export interface SyncStateStore {
  load(): Promise<SyncState | null>;
  save(state: SyncState): Promise<void>;
}

/** Keeps the state in memory. */
export class MemorySyncStateStore implements SyncStateStore {
  private state: SyncState | null = null;
  async load(): Promise<SyncState | null> {
    return this.state && structuredClone(this.state);
  }
  async save(state: SyncState): Promise<void> {
    this.state = structuredClone(state);
  }
}

/** Options of {@link Sync.open}. */
export interface SyncOptions {
  session: Session;
  cipher: BlobCipher;
  merge: Merge;
  store?: SyncStateStore;
  /** Listing page size (1–500, default 100). */
  pageSize?: number;
  /** Rounds of fetch-merge-write before giving up on a record that keeps changing (default 5). */
  maxMergeRounds?: number;
}

/** Record sync for one user on one device. */
export class Sync {
  /** `412 precondition_failed` answers met (conflicts). */
  conflicts = 0;
  private state: SyncState = { records: {} };
  private pulling: Promise<PullResult> | undefined;

  private constructor(private readonly options: SyncOptions, private readonly store: SyncStateStore) {}

  /** Sync with the state saved in `options.store`. */
  static async open(options: SyncOptions): Promise<Sync> {
    const store = options.store ?? new MemorySyncStateStore();
    const sync = new Sync(options, store);
    sync.state = (await store.load()) ?? { records: {} };
    return sync;
  }

  /** The record this device knows under `table`/`key`. */
  known(table: string, key: string): { id: string; etag: string } | undefined {
    for (const [id, r] of Object.entries(this.state.records)) {
      if (r.table === table && r.key === key) return { id, etag: r.etag };
    }
    return undefined;
  }

  /** The persisted cursor. */
  get cursor(): string | undefined {
    return this.state.cursor;
  }

  /** Creates or replaces the row `key` of `table` with `data`; a concurrent change goes through `merge`. */
  async put(table: string, key: string, data: Uint8Array): Promise<SyncedRecord> {
    const known = this.known(table, key);
    const record = known ? await this.write(table, key, known, data) : await this.create(table, key, data);
    await this.save();
    return record;
  }

  /** Deletes the row `key` of `table` (a concurrent change goes through `merge` with `local: null`). */
  async remove(table: string, key: string): Promise<void> {
    const known = this.known(table, key);
    if (!known) return;
    let etag = known.etag;
    for (let round = 0; round <= this.maxRounds; round++) {
      const { response } = await this.options.session.api.DELETE("/api/v1/storage/records/{id}", {
        params: { path: { id: known.id }, header: { "If-Match": etag } },
      });
      if (response.ok || response.status === 404) {
        delete this.state.records[known.id];
        await this.save();
        return;
      }
      if (response.status !== 412) throw await ApiError.read(response);
      this.conflicts++;
      const remote = await this.fetch(known.id, table);
      if (!remote) {
        delete this.state.records[known.id];
        await this.save();
        return;
      }
      const merged = await this.options.merge({ table, key, id: known.id, local: null, remote: remote.data });
      if (merged !== null) {
        await this.write(table, key, { id: known.id, etag: remote.etag }, merged);
        await this.save();
        return;
      }
      etag = remote.etag;
    }
    throw tooManyRounds(table, key);
  }

  /** Fetches what changed since the last pull (or since `updatedSince`, epoch ms, on a first pull). Concurrent calls share one pull. */
  pull(options: { updatedSince?: number } = {}): Promise<PullResult> {
    this.pulling ??= this.doPull(options).finally(() => {
      this.pulling = undefined;
    });
    return this.pulling;
  }

  /** Follows the server's live change notices (see the module docs). */
  subscribe(options: SubscribeOptions = {}): SyncSubscription {
    return new SyncSubscription(this, this.options.session, options);
  }

  private get maxRounds(): number {
    return this.options.maxMergeRounds ?? 5;
  }

  private async doPull(options: { updatedSince?: number }): Promise<PullResult> {
    const result: PullResult = { changed: [], deleted: [], pages: 0, cursor: this.state.cursor, reset: false };
    let cursor = this.state.cursor;
    let updatedSince = options.updatedSince;
    // Only a pull from a saved position can have missed deletions (a first pull lists all).
    const fromPosition = cursor !== undefined || (updatedSince ?? 0) > 0;
    // Live ids of a full listing, when reconciling after `X-Sync-Reset`.
    const listed = new Set<string>();
    for (;;) {
      const query = {
        limit: this.options.pageSize ?? 100,
        ...(cursor ? { cursor } : updatedSince !== undefined ? { updated_since: updatedSince } : {}),
      };
      const { data, response } = await call(
        this.options.session.api.GET("/api/v1/storage/records", { params: { query } }),
      );
      result.pages++;
      if (fromPosition && !result.reset && response.headers.get("x-sync-reset") === "true") {
        // Deletions after our position are gone from the listing: start over from the start.
        result.reset = true;
        cursor = undefined;
        updatedSince = undefined;
        continue;
      }
      for (const meta of data) {
        const known = this.state.records[meta.id];
        if (result.reset && !meta.deleted) listed.add(meta.id);
        if (meta.deleted) {
          if (known || !this.state.cursor) result.deleted.push({ id: meta.id, table: meta.table, key: known?.key });
          delete this.state.records[meta.id];
          continue;
        }
        if (known?.etag === meta.etag) continue; // this device wrote it
        const remote = await this.fetch(meta.id, meta.table);
        if (!remote) continue; // deleted since the listing: the next pull sees its tombstone
        if (known && known.key !== remote.key) {
          throw new IntegrityError(`record ${meta.id} changed its key from ${known.key} to ${remote.key}`);
        }
        this.state.records[meta.id] = { table: meta.table, key: remote.key, etag: remote.etag };
        result.changed.push(remote);
      }
      const next = response.headers.get("x-next-cursor");
      const last = data.at(-1);
      cursor = next ?? (last ? `${last.updated_at}.${last.id}` : cursor);
      this.state.cursor = cursor;
      if (!next) break;
    }
    if (result.reset) {
      for (const [id, known] of Object.entries(this.state.records)) {
        if (listed.has(id)) continue;
        result.deleted.push({ id, table: known.table, key: known.key });
        delete this.state.records[id];
      }
    }
    result.cursor = cursor;
    await this.save();
    return result;
  }

  private async create(table: string, key: string, data: Uint8Array): Promise<SyncedRecord> {
    const blob = await this.options.cipher.seal(data, context(table), key);
    const { data: created } = await call(
      this.options.session.api.POST("/api/v1/storage/records", {
        body: { table, blob: toBase64(blob), checksum: await checksum(blob) },
      }),
    );
    this.state.records[created.id] = { table, key, etag: created.etag };
    return { id: created.id, table, key, etag: created.etag, data };
  }

  /** PUT with If-Match; a 412 fetches, merges and tries again. */
  private async write(table: string, key: string, known: { id: string; etag: string }, data: Uint8Array): Promise<SyncedRecord> {
    let etag = known.etag;
    let bytes = data;
    for (let round = 0; round <= this.maxRounds; round++) {
      const blob = await this.options.cipher.seal(bytes, context(table), key);
      const { data: updated, error, response } = await this.options.session.api.PUT("/api/v1/storage/records/{id}", {
        params: { path: { id: known.id }, header: { "If-Match": etag } },
        body: { blob: toBase64(blob), checksum: await checksum(blob) },
      });
      if (updated) {
        this.state.records[known.id] = { table, key, etag: updated.etag };
        return { id: known.id, table, key, etag: updated.etag, data: bytes };
      }
      if (response.status === 404) {
        // Another device deleted it.
        delete this.state.records[known.id];
        const merged = await this.options.merge({ table, key, id: known.id, local: bytes, remote: null });
        if (merged === null) return { id: known.id, table, key, etag: "", data: new Uint8Array() };
        return this.create(table, key, merged);
      }
      if (response.status !== 412) throw ApiError.fromResponse(response, error);
      this.conflicts++;
      const remote = await this.fetch(known.id, table);
      const merged = await this.options.merge({ table, key, id: known.id, local: bytes, remote: remote?.data ?? null });
      if (!remote) {
        delete this.state.records[known.id];
        if (merged === null) return { id: known.id, table, key, etag: "", data: new Uint8Array() };
        return this.create(table, key, merged);
      }
      if (merged === null) {
        this.state.records[known.id] = { table, key, etag: remote.etag };
        return remote;
      }
      etag = remote.etag;
      bytes = merged;
    }
    throw tooManyRounds(table, key);
  }

  /** The current version of record `id` (decrypted and verified), or undefined if it is gone. */
  private async fetch(id: string, table: string): Promise<SyncedRecord | undefined> {
    const { data, error, response } = await this.options.session.api.GET("/api/v1/storage/records/{id}", {
      params: { path: { id } },
      parseAs: "arrayBuffer",
    });
    if (response.status === 404) return undefined;
    if (!data) throw ApiError.fromResponse(response, error);
    const blob = new Uint8Array(data);
    const expected = response.headers.get("x-checksum");
    if (expected && expected.toLowerCase() !== (await checksum(blob))) {
      throw new IntegrityError(`record ${id}: the bytes do not match their checksum`);
    }
    const opened = await this.options.cipher.open(blob, context(table));
    const etag = response.headers.get("etag") ?? "";
    return { id, table, key: opened.label, etag, data: opened.plaintext };
  }

  private async save(): Promise<void> {
    await this.store.save(this.state);
  }
}

function context(table: string): string {
  return `record/${table}`;
}

function tooManyRounds(table: string, key: string): ApiError {
  return new ApiError({
    code: "precondition_failed",
    message: `${table}/${key} kept changing while merging; try again later`,
    status: 412,
  });
}

/** A live change notice (`GET /api/v1/sync/stream`). */
export interface ChangeNotice {
  type: "changed";
  kind: "record" | "backup" | "vector";
  cursor: unknown;
}

/** How a subscription follows changes. */
export type SubscriptionMode = "connecting" | "live" | "polling" | "off" | "closed";

/** Options of {@link Sync.subscribe}. */
export interface SubscribeOptions extends SocketOptions {
  /** Without live notices, pull this often (default: don't poll). */
  pollIntervalMs?: number;
  /** Pull on every record notice (default true). */
  autoPull?: boolean;
  onNotice?(notice: ChangeNotice): void;
  onPull?(result: PullResult): void;
  onError?(error: Error): void;
  onMode?(mode: SubscriptionMode): void;
  /** Reconnection backoff (default 500 ms doubling to 30 s). */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number };
}

/** A running subscription to live change notices (or its polling fallback). */
export class SyncSubscription {
  mode: SubscriptionMode = "connecting";
  /** Notices received. */
  notices = 0;
  private socket: SocketLike | undefined;
  private poller: ReturnType<typeof setInterval> | undefined;
  private readonly stop = new AbortController();
  private pullAgain = false;
  private settleFirst!: (mode: SubscriptionMode) => void;
  /** Resolves with the first settled mode: `live`, `polling` or `off`. */
  readonly ready: Promise<SubscriptionMode>;

  /** @internal */
  constructor(private readonly sync: Sync, private readonly session: Session, private readonly options: SubscribeOptions) {
    this.ready = new Promise((resolve) => {
      this.settleFirst = resolve;
    });
    void this.run();
  }

  /** Stops following changes. */
  close(): void {
    this.setMode("closed");
    this.stop.abort();
    if (this.poller) clearInterval(this.poller);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "bye");
    }
  }

  private setMode(mode: SubscriptionMode): void {
    if (this.mode === "closed") return;
    this.mode = mode;
    if (mode !== "connecting") this.settleFirst(mode);
    this.options.onMode?.(mode);
  }

  private async run(): Promise<void> {
    const base = this.options.reconnect?.baseDelayMs ?? 500;
    const max = this.options.reconnect?.maxDelayMs ?? 30_000;
    let unknownFailures = 0;
    for (let attempt = 0; !this.stop.signal.aborted; attempt++) {
      try {
        const socket = await openSocket(this.session, "/api/v1/sync/stream", this.options, (data) => this.onFrame(data));
        if (this.stop.signal.aborted) {
          socket.close(1000, "bye");
          return;
        }
        attempt = 0;
        unknownFailures = 0;
        this.stopPolling();
        await this.follow(socket);
      } catch (e) {
        const status = e instanceof HandshakeError ? e.status : undefined;
        // 404: this server has no live notices (yet). A browser cannot see the status: after a
        // few refusals, fall back the same way.
        if (status === 404 || (status === undefined && ++unknownFailures >= 3 && this.mode !== "live")) {
          this.fallBack();
          return;
        }
        if (status === 401) {
          try {
            await this.session.refresh();
          } catch (refresh) {
            this.options.onError?.(refresh as Error);
            this.close();
            return;
          }
        } else {
          this.options.onError?.(e as Error);
        }
      }
      if (this.stop.signal.aborted) return;
      this.setMode("connecting");
      await sleep(backoff(attempt, base, max), this.stop.signal);
    }
  }

  /** Resolves when the socket closes. */
  private follow(socket: SocketLike): Promise<void> {
    this.socket = socket;
    this.setMode("live");
    return new Promise((resolve) => {
      socket.onerror = () => undefined;
      socket.onclose = () => {
        socket.onmessage = socket.onclose = socket.onerror = null;
        if (this.socket === socket) this.socket = undefined;
        resolve();
      };
    });
  }

  private onFrame(data: unknown): void {
    const frame = parseFrame(data);
    if (frame?.type !== "changed" || this.mode === "closed") return;
    const notice: ChangeNotice = { type: "changed", kind: frame.kind as ChangeNotice["kind"], cursor: frame.cursor };
    this.notices++;
    this.options.onNotice?.(notice);
    if (notice.kind === "record" && this.options.autoPull !== false) this.pullNow();
  }

  private fallBack(): void {
    const every = this.options.pollIntervalMs;
    if (!every) {
      this.setMode("off");
      return;
    }
    this.setMode("polling");
    this.poller = setInterval(() => this.pullNow(), every);
    (this.poller as { unref?: () => void }).unref?.();
  }

  private stopPolling(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  /** Pulls; a notice arriving meanwhile pulls once more after. */
  private pullNow(): void {
    if (this.mode === "closed") return;
    if (this.pulling) {
      this.pullAgain = true;
      return;
    }
    this.pulling = true;
    void this.sync
      .pull()
      .then((result) => {
        if (result.changed.length || result.deleted.length || this.options.onPull) this.options.onPull?.(result);
      })
      .catch((e: unknown) => this.options.onError?.(e as Error))
      .finally(() => {
        this.pulling = false;
        if (this.pullAgain) {
          this.pullAgain = false;
          this.pullNow();
        }
      });
  }

  private pulling = false;
}

/**
 * Backups of the app's (already encrypted) database: one `PUT /backup` up to 95 MiB, or a
 * multipart upload beyond (or on request) — parts of the server's `part_size`, each with its
 * own checksum, the whole one built incrementally as the parts go out. Progress persists in an
 * {@link UploadProgressStore}: an interrupted upload (crash, network loss, app closed) resumes
 * where it stopped, sending only the parts the server has not acknowledged. Downloads are
 * verified against `X-Backup-Checksum`. Checksums are computed in the client by the server's
 * own Rust (wasm).
 *
 * Encrypt the database dump with the {@link BlobCipher} (context `backup`) before handing it
 * here; the server only ever sees opaque bytes.
 */
import { checksum, ChecksumStream } from "./crypto/checksum.js";
import { ApiError, IntegrityError } from "./errors.js";
import { asContractBytes, call, rawBody, type Schemas } from "./http.js";
import type { Session } from "./session.js";

/** A backup's metadata (`GET /backup/history`). */
export type BackupMetadata = Schemas["BackupMetadata"];

/** The largest single-request backup (`PUT /backup`). */
export const ONE_SHOT_LIMIT = 95 * 1024 * 1024;

/** What a multipart upload has done so far. */
export interface UploadProgress {
  uploadId: string;
  partSize: number;
  /** Epoch ms after which the server abandons the upload. */
  expiresAt: number;
  /** Checksum of the whole backup (the upload's identity). */
  checksum: string;
  /** Acknowledged parts: number → its checksum. */
  parts: Record<number, string>;
}

/** Where multipart progress persists between runs, keyed by the backup's checksum. */
export interface UploadProgressStore {
  load(key: string): Promise<UploadProgress | null>;
  save(key: string, progress: UploadProgress | null): Promise<void>;
}

/** Keeps progress in memory (share the instance to resume within one process). */
export class MemoryUploadProgressStore implements UploadProgressStore {
  private readonly entries = new Map<string, UploadProgress>();
  async load(key: string): Promise<UploadProgress | null> {
    const p = this.entries.get(key);
    return p ? structuredClone(p) : null;
  }
  async save(key: string, progress: UploadProgress | null): Promise<void> {
    if (progress) this.entries.set(key, structuredClone(progress));
    else this.entries.delete(key);
  }
}

/** The backup's own metadata. */
export interface BackupInfo {
  /** The app's backup format version (≥ 1). */
  version: number;
  /** The backup's time (epoch ms; default now). */
  timestamp?: number;
  /** Delete the oldest backups when the tier's limit would be exceeded (else `quota_exceeded`). */
  pruneOldest?: boolean;
}

/** Options of {@link Backups.upload}. */
export interface UploadOptions {
  /** Force multipart below the one-shot limit (default: only beyond it). */
  multipart?: boolean;
  /** After each acknowledged part. */
  onPart?(partNumber: number, totalParts: number): void;
}

/** A downloaded backup. */
export interface DownloadedBackup {
  bytes: Uint8Array;
  id: string;
  version: number;
  timestamp: number;
  checksum: string;
}

/** Backups of one user. */
export class Backups {
  /** Part uploads sent by this instance. */
  partsSent = 0;
  private readonly progress: UploadProgressStore;

  constructor(private readonly session: Session, progress?: UploadProgressStore) {
    this.progress = progress ?? new MemoryUploadProgressStore();
  }

  /** Stores `bytes` as a backup; returns its id. Multipart beyond {@link ONE_SHOT_LIMIT}, resuming earlier progress. */
  async upload(bytes: Uint8Array, info: BackupInfo, options: UploadOptions = {}): Promise<string> {
    if (!options.multipart && bytes.length <= ONE_SHOT_LIMIT) return this.put(bytes, info);
    return this.multipart(bytes, info, options);
  }

  /** One `PUT /backup` (≤ 95 MiB). */
  async put(bytes: Uint8Array, info: BackupInfo): Promise<string> {
    const header = {
      "X-Backup-Version": info.version,
      "X-Backup-Timestamp": info.timestamp ?? Date.now(),
      "X-Backup-Checksum": await checksum(bytes),
      ...(info.pruneOldest ? { "X-Backup-Prune": "oldest" } : {}),
    };
    const { data } = await call(
      this.session.api.PUT("/api/v1/backup", {
        params: { header },
        body: asContractBytes(bytes),
        bodySerializer: rawBody,
        headers: { "Content-Type": "application/octet-stream" },
      }),
    );
    return data.id;
  }

  /** The newest backup, verified; `null` when there is none, or none newer than `ifModifiedSince`. */
  async latest(options: { ifModifiedSince?: Date } = {}): Promise<DownloadedBackup | null> {
    const header = options.ifModifiedSince ? { "If-Modified-Since": options.ifModifiedSince.toUTCString() } : {};
    const { data, error, response } = await this.session.api.GET("/api/v1/backup", {
      params: { header },
      parseAs: "arrayBuffer",
    });
    if (response.status === 304 || response.status === 404) return null;
    if (!data) throw ApiError.fromResponse(response, error);
    const bytes = new Uint8Array(data);
    const actual = await checksum(bytes);
    const expected = response.headers.get("x-backup-checksum")?.toLowerCase();
    if (expected === undefined) {
      // A browser sees only the headers CORS exposes, and the X-Backup-* ones are not: check
      // the bytes against the newest entry of the history instead.
      const newest = (await this.history())[0];
      if (newest?.checksum.toLowerCase() !== actual) {
        throw new IntegrityError(`the backup's bytes hash to ${actual}, not to the newest backup's checksum`);
      }
      return { bytes, id: newest.id, version: newest.version, timestamp: newest.timestamp, checksum: actual };
    }
    if (expected !== actual) throw new IntegrityError(`the backup's bytes hash to ${actual}, not ${expected}`);
    return {
      bytes,
      id: response.headers.get("x-backup-id") ?? "",
      version: Number(response.headers.get("x-backup-version")),
      timestamp: Number(response.headers.get("x-backup-timestamp")),
      checksum: actual,
    };
  }

  /** Every backup's metadata, newest first. */
  async history(): Promise<BackupMetadata[]> {
    return (await call(this.session.api.GET("/api/v1/backup/history"))).data;
  }

  /** Deletes backup `id`. */
  async delete(id: string): Promise<void> {
    await call(this.session.api.DELETE("/api/v1/backup/{id}", { params: { path: { id } } }));
  }

  /** Abandons the multipart upload of `bytes`, if one is in progress. */
  async abort(bytes: Uint8Array): Promise<void> {
    const key = await checksum(bytes);
    const progress = await this.progress.load(key);
    if (!progress) return;
    const { response } = await this.session.api.DELETE("/api/v1/backup/uploads/{id}", {
      params: { path: { id: progress.uploadId } },
    });
    if (!response.ok && response.status !== 404) throw await ApiError.read(response);
    await this.progress.save(key, null);
  }

  private async multipart(bytes: Uint8Array, info: BackupInfo, options: UploadOptions): Promise<string> {
    const whole = await checksum(bytes);
    let progress = await this.progress.load(whole);
    if (progress && progress.expiresAt <= Date.now()) progress = null;
    if (!progress) progress = await this.begin(whole);
    const total = Math.max(1, Math.ceil(bytes.length / progress.partSize));
    const stream = await ChecksumStream.create();
    try {
      for (let n = 1; n <= total; n++) {
        const part = bytes.subarray((n - 1) * progress.partSize, Math.min(bytes.length, n * progress.partSize));
        stream.update(part);
        const sum = await checksum(part);
        if (progress.parts[n] === sum) continue; // acknowledged before the interruption
        const { response, error } = await this.session.api.PUT("/api/v1/backup/uploads/{id}/parts/{n}", {
          params: { path: { id: progress.uploadId, n }, header: { "X-Part-Checksum": sum } },
          body: asContractBytes(part),
          bodySerializer: rawBody,
          headers: { "Content-Type": "application/octet-stream" },
        });
        this.partsSent++;
        if (response.status === 404) {
          // The server no longer knows the upload (expired or aborted): start over.
          await this.progress.save(whole, null);
          return this.multipart(bytes, info, options);
        }
        if (!response.ok) throw ApiError.fromResponse(response, error);
        progress.parts[n] = sum;
        await this.progress.save(whole, progress);
        options.onPart?.(n, total);
      }
      if (stream.digest() !== whole) throw new IntegrityError("the parts do not add up to the backup");
    } finally {
      stream.free();
    }
    const { data } = await call(
      this.session.api.POST("/api/v1/backup/uploads/{id}/complete", {
        params: { path: { id: progress.uploadId } },
        body: {
          version: info.version,
          timestamp: info.timestamp ?? Date.now(),
          checksum: whole,
          ...(info.pruneOldest ? { prune: "oldest" } : {}),
        },
      }),
    );
    await this.progress.save(whole, null);
    return data.id;
  }

  private async begin(whole: string): Promise<UploadProgress> {
    const { data } = await call(this.session.api.POST("/api/v1/backup/uploads"));
    const progress: UploadProgress = {
      uploadId: data.upload_id,
      partSize: data.part_size,
      expiresAt: data.expires_at,
      checksum: whole,
      parts: {},
    };
    await this.progress.save(whole, progress);
    return progress;
  }
}

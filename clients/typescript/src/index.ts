/**
 * `@adiuva/client` — the desktop app's client kit for the Adiuva cloud API.
 *
 * - {@link Session}: register, login, single-flight refresh with rotation, logout, pluggable token store.
 * - {@link ChatStream}: streaming chat over a WebSocket with cancel, heartbeats, reconnect and resume.
 * - {@link Sync}: record sync by cursor with tombstones, `If-Match` writes, caller-supplied merge, live notices.
 * - {@link Backups}: one-shot or resumable multipart backups, checksums computed in the client.
 * - {@link Batches}: a playbook run once per item on the server, with results by index.
 * - {@link Vectors}: DCPE-encrypted embeddings and sealed payloads; {@link DcpeKey}, {@link BlobCipher}.
 *
 * Types come from the API contract (`contract/openapi.json`) through openapi-typescript; every
 * request goes through openapi-fetch, so paths and shapes are checked by the compiler.
 */
export { ApiError, IntegrityError, TransportError, parseRetryAfter } from "./errors.js";
export type { ApiErrorInit, ErrorEnvelope } from "./errors.js";
export { call, createApi, wsUrl } from "./http.js";
export type { Api, ApiPath, Schemas, Transport } from "./http.js";
export type { components, operations, paths } from "./generated/schema.js";
export { FileTokenStore, MemoryTokenStore, Session } from "./session.js";
export type { SessionOptions, SignedOutReason, TokenStore, Tokens, UserProfile } from "./session.js";
export { ChatRun, ChatStream } from "./chat.js";
export type { ChatRequest, ChatRunHandlers, ChatStreamOptions, DoneFrame } from "./chat.js";
export { MemorySyncStateStore, Sync, SyncSubscription } from "./sync.js";
export type {
  ChangeNotice,
  Conflict,
  DeletedRecord,
  Merge,
  PullResult,
  RecordMeta,
  SubscribeOptions,
  SubscriptionMode,
  SyncOptions,
  SyncState,
  SyncStateStore,
  SyncedRecord,
} from "./sync.js";
export { Backups, MemoryUploadProgressStore, ONE_SHOT_LIMIT } from "./backups.js";
export type { BackupInfo, BackupMetadata, DownloadedBackup, UploadOptions, UploadProgress, UploadProgressStore } from "./backups.js";
export { Batches, isBatchFrame, MAX_BATCH_ITEMS } from "./batches.js";
export type { BatchDoneFrame, BatchItemFrame, BatchRequest, BatchResult, BatchSummary, BatchView, WaitOptions } from "./batches.js";
export { MAX_BATCH, Vectors } from "./vectors.js";
export type { VectorHit, VectorInput, VectorsOptions } from "./vectors.js";
export { DcpeKey, DEFAULT_BETA, DEFAULT_SCALE, NONCE_BYTES, loadCrypto, normalize, randomBytes } from "./crypto/dcpe.js";
export type { EncryptedVector } from "./crypto/dcpe.js";
export { BlobCipher } from "./crypto/blob.js";
export type { Opened } from "./crypto/blob.js";
export { ChecksumStream, checksum } from "./crypto/checksum.js";
export { HandshakeError, inNode } from "./ws.js";
export type { SocketAuth, SocketLike, SocketOptions, WebSocketConstructor } from "./ws.js";
export { fromBase64, toBase64 } from "./bytes.js";

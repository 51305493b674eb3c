/**
 * Batches: one playbook (or, on power and team, custom steps) run once per item in the user's
 * home, 3 items at a time. Results live in the server's memory only: they expire 10 minutes
 * after the batch ends, and a batch whose results are gone is `lost` — run it again.
 * Progress also arrives on every socket of the user as `batch_item` / `batch_done` frames
 * ({@link isBatchFrame}).
 */
import { call, sleep, type Schemas } from "./http.js";
import type { Session } from "./session.js";

/** The most items of one batch. */
export const MAX_BATCH_ITEMS = 100;

export type BatchRequest = Schemas["BatchRequest"];
export type BatchView = Schemas["BatchView"];
export type BatchSummary = Schemas["BatchSummary"];
export type BatchResult = Schemas["BatchResult"];
export type BatchItemFrame = Schemas["BatchItemFrame"];
export type BatchDoneFrame = Schemas["BatchDoneFrame"];

/** Whether a socket frame is a batch's progress (`batch_item` or `batch_done`). */
export function isBatchFrame(frame: unknown): frame is BatchItemFrame | BatchDoneFrame {
  const type = (frame as { type?: unknown } | null)?.type;
  return type === "batch_item" || type === "batch_done";
}

/** Options of {@link Batches.wait}. */
export interface WaitOptions {
  /** Between polls (default 500 ms). */
  intervalMs?: number;
  /** Give up after (default 10 minutes): the answer is then the last view, still `running`. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The batches of one user. */
export class Batches {
  constructor(private readonly session: Session) {}

  /** Starts a batch; answers its id. Refusals are `ApiError`s (`conflict` at `batch_active`, …). */
  async start(request: BatchRequest): Promise<string> {
    const { data } = await call(this.session.api.POST("/api/v1/batches", { body: request }));
    return data.batch_id;
  }

  /** The batch and its results so far. */
  async get(id: string): Promise<BatchView> {
    const { data } = await call(this.session.api.GET("/api/v1/batches/{id}", { params: { path: { id } } }));
    return data;
  }

  /** The user's batches of the last day, newest first. */
  async list(): Promise<BatchSummary[]> {
    const { data } = await call(this.session.api.GET("/api/v1/batches"));
    return data.batches;
  }

  /** Cancels a running batch (its upstream calls are aborted); answers the batch. */
  async cancel(id: string): Promise<BatchView> {
    const { data } = await call(this.session.api.DELETE("/api/v1/batches/{id}", { params: { path: { id } } }));
    return data;
  }

  /** Polls the batch until it is no longer `running` (or the wait ends); answers the last view. */
  async wait(id: string, options: WaitOptions = {}): Promise<BatchView> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    for (;;) {
      const view = await this.get(id);
      if (view.status !== "running" || Date.now() >= deadline || options.signal?.aborted) return view;
      await sleep(options.intervalMs ?? 500, options.signal);
    }
  }
}

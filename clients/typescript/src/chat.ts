/**
 * Streaming chat over `GET /api/v1/chat/stream` (a WebSocket; frames as the contract's
 * description gives them): send a `ChatRequest`, receive `started`, numbered `token` frames and
 * a final `done` (or `error`); `cancel` at any time.
 *
 * The connection is watched: the server pings while a request streams, the client pings too,
 * and a socket that stays silent longer than `heartbeatTimeoutMs` is dropped. A dropped socket
 * (network change, sleep, heartbeat timeout) is reopened with exponential backoff and the
 * running request is resumed from the last `seq` seen — the server replays the missed tokens,
 * so none is lost and none is delivered twice.
 */
import { ApiError, TransportError } from "./errors.js";
import { backoff, sleep, type Schemas } from "./http.js";
import type { Session } from "./session.js";
import { drop, HandshakeError, openSocket, parseFrame, sendJson, type SocketLike, type SocketOptions } from "./ws.js";

/** `POST /chat`'s body, also the first frame of a streamed request. */
export type ChatRequest = Schemas["ChatRequest"];

/** The final frame of a request. */
export interface DoneFrame {
  type: "done";
  done: true;
  request_id: string;
  /** The whole answer (sanitized). */
  response: string;
  /** Changes for the app to apply locally. */
  actions: Schemas["PlanAction"][];
  /** In plan mode, the plan. */
  plan?: Schemas["ExecutionPlan"];
  /** Set when the request was cancelled. */
  cancelled?: boolean;
}

/** Callbacks of one request. */
export interface ChatRunHandlers {
  /** The server accepted the request and named it. */
  onStarted?(requestId: string): void;
  /** One token, in order, exactly once (also across reconnects). */
  onToken?(text: string, seq: number): void;
  /** The socket dropped; the request is being resumed (attempt from 1). */
  onReconnect?(attempt: number): void;
}

/** Options of {@link ChatStream.connect}. */
export interface ChatStreamOptions extends SocketOptions {
  session: Session;
  /** Reconnection backoff (defaults: 250 ms doubling to 5 s, 8 attempts). */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  /** The client's ping interval (default 20 s; the server answers `pong`). */
  pingIntervalMs?: number;
  /** Drop a socket that sent nothing for this long while a request runs (default 75 s; the server pings every 30 s). */
  heartbeatTimeoutMs?: number;
}

/** One request on a {@link ChatStream}. */
export class ChatRun {
  /** Resolves with the `done` frame; rejects with an {@link ApiError} (error frame) or a {@link TransportError}. */
  readonly done: Promise<DoneFrame>;
  /** The server's id of the request (after `started`). */
  requestId: string | undefined;
  /** The last token `seq` received. */
  lastSeq: number | undefined;
  /** The text received so far. */
  text = "";
  /** How often the socket was reopened for this request. */
  reconnects = 0;
  /** Server pings received while it ran. */
  pings = 0;

  /** @internal */ cancelRequested = false;
  /** @internal */ settled = false;
  private resolveDone!: (frame: DoneFrame) => void;
  private rejectDone!: (error: Error) => void;

  /** @internal */
  constructor(
    private readonly stream: ChatStream,
    readonly handlers: ChatRunHandlers,
  ) {
    this.done = new Promise<DoneFrame>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A caller that only awaits `done` later must not see an unhandled rejection meanwhile.
    this.done.catch(() => undefined);
  }

  /** Asks the server to stop; `done` then resolves with `cancelled: true`. */
  cancel(): void {
    this.cancelRequested = true;
    this.stream.sendCancel(this);
  }

  /** @internal */
  finish(frame: DoneFrame): void {
    if (this.settled) return;
    this.settled = true;
    this.resolveDone(frame);
  }

  /** @internal */
  fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectDone(error);
  }
}

/** A chat WebSocket that survives dropped connections. */
export class ChatStream {
  /** How often a socket was reopened (all requests). */
  reconnects = 0;

  private socket: SocketLike | undefined;
  private run: ChatRun | undefined;
  private closed = false;
  private lastFrameAt = 0;
  private timers: ReturnType<typeof setInterval>[] = [];
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private readonly maxAttempts: number;
  private readonly pingInterval: number;
  private readonly heartbeatTimeout: number;

  private constructor(private readonly options: ChatStreamOptions) {
    this.baseDelay = options.reconnect?.baseDelayMs ?? 250;
    this.maxDelay = options.reconnect?.maxDelayMs ?? 5_000;
    this.maxAttempts = options.reconnect?.maxAttempts ?? 8;
    this.pingInterval = options.pingIntervalMs ?? 20_000;
    this.heartbeatTimeout = options.heartbeatTimeoutMs ?? 75_000;
  }

  /** Opens the socket. */
  static async connect(options: ChatStreamOptions): Promise<ChatStream> {
    const stream = new ChatStream(options);
    await stream.open();
    stream.startTimers();
    return stream;
  }

  /** Whether a request is running on this stream. */
  get busy(): boolean {
    return this.run !== undefined && !this.run.settled;
  }

  /** Sends `request`; one at a time per stream (another while one runs is refused with `conflict`). */
  send(request: ChatRequest, handlers: ChatRunHandlers = {}): ChatRun {
    const run = new ChatRun(this, handlers);
    if (this.closed) {
      run.fail(new TransportError("the chat stream is closed"));
      return run;
    }
    if (this.busy) {
      run.fail(new ApiError({ code: "conflict", message: "a request is already running on this stream", status: 0 }));
      return run;
    }
    this.run = run;
    void this.start(run, request);
    return run;
  }

  /** Follows a request started elsewhere (another socket, an earlier run of the app) after `after`. */
  resume(requestId: string, after: number | undefined, handlers: ChatRunHandlers = {}): ChatRun {
    const run = new ChatRun(this, handlers);
    if (this.busy) {
      run.fail(new ApiError({ code: "conflict", message: "a request is already running on this stream", status: 0 }));
      return run;
    }
    run.requestId = requestId;
    run.lastSeq = after;
    this.run = run;
    void this.ensureOpen()
      .then(() => this.sendResume(run))
      .catch((e: unknown) => run.fail(asError(e)));
    return run;
  }

  /** Closes the socket (a running request is cancelled by the server). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.run?.fail(new TransportError("the chat stream was closed"));
    const socket = this.socket;
    this.socket = undefined;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "bye");
    }
  }

  /**
   * @internal Sends the cancel once the server has named the request: a cancel that overtook
   * its request would find nothing to cancel (`not_found`) and the request would then run on.
   */
  sendCancel(run: ChatRun): void {
    if (run !== this.run || run.settled || !this.socket || !run.requestId) return;
    sendJson(this.socket, { type: "cancel", request_id: run.requestId });
  }

  private async start(run: ChatRun, request: ChatRequest): Promise<void> {
    try {
      await this.ensureOpen();
      if (!this.socket || !sendJson(this.socket, request)) throw new TransportError("the socket is not open");
      this.lastFrameAt = Date.now();
    } catch (e) {
      run.fail(asError(e));
      if (this.run === run) this.run = undefined;
    }
  }

  private async ensureOpen(): Promise<void> {
    if (this.socket && this.socket.readyState === 1) return;
    await this.open();
  }

  private async open(): Promise<void> {
    let socket: SocketLike | undefined;
    const onMessage = (data: unknown) => {
      if (socket === undefined || socket === this.socket) this.onFrame(data);
    };
    try {
      socket = await openSocket(this.options.session, "/api/v1/chat/stream", this.options, onMessage);
    } catch (e) {
      if (e instanceof HandshakeError && e.status === 401) {
        await this.options.session.refresh();
        socket = await openSocket(this.options.session, "/api/v1/chat/stream", this.options, onMessage);
      } else {
        throw e;
      }
    }
    const opened = socket;
    this.socket = opened;
    this.lastFrameAt = Date.now();
    opened.onclose = () => this.onDrop(opened);
    socket.onerror = () => undefined; // onclose follows
  }

  private startTimers(): void {
    this.timers.push(
      setInterval(() => {
        if (this.socket) sendJson(this.socket, { type: "ping" });
      }, this.pingInterval),
    );
    const watch = Math.max(10, Math.min(this.heartbeatTimeout / 4, 1_000));
    this.timers.push(
      setInterval(() => {
        if (this.socket && this.busy && Date.now() - this.lastFrameAt > this.heartbeatTimeout) {
          // Silent too long: the connection is dead even if the OS has not noticed.
          const dead = this.socket;
          drop(dead);
          this.onDrop(dead);
        }
      }, watch),
    );
    for (const t of this.timers) (t as { unref?: () => void }).unref?.();
  }

  private onFrame(data: unknown): void {
    this.lastFrameAt = Date.now();
    const frame = parseFrame(data);
    const run = this.run;
    if (!frame || !run || run.settled) return;
    const id = typeof frame.request_id === "string" ? frame.request_id : undefined;
    if (id && run.requestId && id !== run.requestId) return; // another request's frame
    // Once the request is named, its frames carry its id; an id-less error then answers some
    // other frame (a stray cancel or resume), not the request.
    if (!id && run.requestId && frame.type === "error") return;
    switch (frame.type) {
      case "started":
        if (id) {
          run.requestId = id;
          run.handlers.onStarted?.(id);
          if (run.cancelRequested) this.sendCancel(run);
        }
        break;
      case "token": {
        const seq = frame.seq;
        if (typeof seq !== "number" || typeof frame.text !== "string") break;
        if (run.lastSeq !== undefined && seq <= run.lastSeq) break; // replayed twice
        run.lastSeq = seq;
        run.text += frame.text;
        run.handlers.onToken?.(frame.text, seq);
        break;
      }
      case "ping":
        run.pings++;
        break;
      case "done":
        this.run = undefined;
        run.finish(frame as unknown as DoneFrame);
        break;
      case "error":
        this.run = undefined;
        run.fail(ApiError.fromFrame(frame));
        break;
      default:
        break; // pong and future frame types
    }
  }

  private onDrop(socket: SocketLike): void {
    if (socket !== this.socket) return;
    socket.onmessage = socket.onclose = socket.onerror = null;
    this.socket = undefined;
    const run = this.run;
    if (this.closed || !run || run.settled) return;
    if (!run.requestId) {
      this.run = undefined;
      run.fail(new TransportError("the connection dropped before the server started the request; it may or may not have run"));
      return;
    }
    void this.reattach(run);
  }

  private async reattach(run: ChatRun): Promise<void> {
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      await sleep(backoff(attempt - 1, this.baseDelay, this.maxDelay));
      if (this.closed || run.settled) return;
      try {
        await this.open();
        run.reconnects++;
        this.reconnects++;
        run.handlers.onReconnect?.(attempt);
        this.sendResume(run);
        return;
      } catch {
        // try again after the next delay
      }
    }
    if (this.run === run) this.run = undefined;
    run.fail(new TransportError(`the chat stream could not reconnect after ${this.maxAttempts} attempts`));
  }

  private sendResume(run: ChatRun): void {
    if (!this.socket) return;
    sendJson(this.socket, { type: "resume", request_id: run.requestId, after: run.lastSeq ?? null });
    this.lastFrameAt = Date.now();
    if (run.cancelRequested) this.sendCancel(run);
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

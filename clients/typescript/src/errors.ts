/**
 * Errors of the client kit. Every refusal by the API becomes an {@link ApiError} carrying the
 * server's stable `code` (never renamed; see the contract), the HTTP `status`, the request id
 * (`X-Request-Id`, for support), the envelope's `details` and, for `rate_limited`, `retryAfter`.
 */

/** The error envelope every API error answers with. */
export interface ErrorEnvelope {
  error: { code: string; message: string; request_id?: string; details?: unknown };
}

/** What an {@link ApiError} is made of. */
export interface ApiErrorInit {
  code: string;
  message: string;
  /** HTTP status; 0 for errors that came over a WebSocket frame or never reached the server. */
  status: number;
  requestId?: string | undefined;
  details?: unknown;
  /** Seconds to wait before retrying (`Retry-After`), when the server said. */
  retryAfter?: number | undefined;
  cause?: unknown;
}

/** The API refused a request (or a streamed request ended in an error frame). */
export class ApiError extends Error {
  /** The stable error code, e.g. `rate_limited`, `precondition_failed`, `tier_required`. */
  readonly code: string;
  /** The HTTP status (0 for WebSocket error frames and transport failures). */
  readonly status: number;
  /** The request's id (`X-Request-Id` / the envelope's `request_id`). */
  readonly requestId: string | undefined;
  /** The envelope's `details` (e.g. the fields of a `validation_failed`). */
  readonly details: unknown;
  /** `Retry-After` in seconds (a `rate_limited` answer carries it). */
  readonly retryAfter: number | undefined;

  constructor(init: ApiErrorInit) {
    super(`${init.code}: ${init.message}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "ApiError";
    this.code = init.code;
    this.status = init.status;
    this.requestId = init.requestId;
    this.details = init.details;
    this.retryAfter = init.retryAfter;
  }

  /** Builds the error from a non-2xx response and its (already parsed, if any) body. */
  static fromResponse(response: Response, body: unknown): ApiError {
    const envelope = isEnvelope(body) ? body.error : undefined;
    const requestId = envelope?.request_id ?? response.headers.get("x-request-id") ?? undefined;
    return new ApiError({
      code: envelope?.code ?? codeForStatus(response.status),
      message: envelope?.message ?? (response.statusText || `HTTP ${response.status}`),
      status: response.status,
      requestId,
      details: envelope?.details,
      retryAfter: parseRetryAfter(response.headers.get("retry-after")),
    });
  }

  /** Reads the body of a non-2xx response and builds the error. */
  static async read(response: Response): Promise<ApiError> {
    let body: unknown;
    try {
      const text = await response.text();
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return ApiError.fromResponse(response, body);
  }

  /** An error frame of a WebSocket (`{"type":"error","code","message","request_id"?,"details"?}`). */
  static fromFrame(frame: { code?: unknown; message?: unknown; request_id?: unknown; details?: unknown }): ApiError {
    return new ApiError({
      code: typeof frame.code === "string" ? frame.code : "internal",
      message: typeof frame.message === "string" ? frame.message : "error frame",
      status: 0,
      requestId: typeof frame.request_id === "string" ? frame.request_id : undefined,
      details: frame.details,
    });
  }
}

/** The request never got an answer (network down, connection reset, aborted). */
export class TransportError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "TransportError";
  }
}

/** Bytes from the server failed a client-side check (checksum, AEAD tag, record identity). */
export class IntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IntegrityError";
  }
}

function isEnvelope(body: unknown): body is ErrorEnvelope {
  if (typeof body !== "object" || body === null) return false;
  const error = (body as { error?: unknown }).error;
  return typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string";
}

function codeForStatus(status: number): string {
  switch (status) {
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 409: return "conflict";
    case 412: return "precondition_failed";
    case 413: return "payload_too_large";
    case 429: return "rate_limited";
    default: return status >= 500 ? "internal" : "http_error";
  }
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

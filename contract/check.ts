// Type-checked by scripts/test.sh (tsc --strict): the generated types describe what the desktop
// app sends and receives. If the contract changes shape, this stops compiling.
import type { components, operations, paths } from "./api-types";

type Schemas = components["schemas"];

const register: Schemas["RegisterRequest"] = { email: "ada@example.com", password: "correct horse" };
const login: Schemas["LoginRequest"] = { email: register.email, password: register.password };
const tokens: Schemas["AuthTokens"] = { access_token: "a.b.c", refresh_token: "r", expires_at: 1_800_000_000_000 };
const refresh: Schemas["RefreshRequest"] = { refresh_token: tokens.refresh_token };
const me: Schemas["UserProfile"] = { id: "00000000-0000-4000-8000-000000000000", email: login.email, email_verified: true, tier: "power" };
const tiers: Schemas["Tier"][] = ["free", "pro", "power", "team"];
const ticket: Schemas["WsTicket"] = { ticket: "t", expires_at: 1 };
const all: Schemas["LoggedOutAll"] = { ok: true, revoked: 2 };
const err: Schemas["ErrorBody"] = {
    error: { code: "validation_failed", message: "validation failed", request_id: "r", details: { fields: [] } },
};

// Operation ids and their success bodies line up with the paths.
type LoginOk = operations["login"]["responses"][200]["content"]["application/json"];
const loginOk: LoginOk = tokens;
type RegisterCreated = paths["/api/v1/auth/register"]["post"]["responses"][201]["content"]["application/json"];
const created: RegisterCreated = tokens;
type MeOk = paths["/api/v1/auth/me"]["get"]["responses"][200]["content"]["application/json"];
const profile: MeOk = me;

export const samples = { register, login, tokens, refresh, me, tiers, ticket, all, err, loginOk, created, profile };

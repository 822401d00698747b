// A short tour with a typed client: openapi-fetch over the types openapi-typescript
// generates from /openapi.json (scripts/client-smoke-ts.sh writes them to schema.d.ts).
// `tsc --strict` checks every path, parameter, body and response field used here against
// the document; the run checks each status and a few fields, and exits non-zero on the
// first mismatch. Usage: node out/tour.js http://127.0.0.1:PORT
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Problem = components["schemas"]["Problem"];

const baseUrl = process.argv[2];
if (!baseUrl) throw new Error("usage: node tour.js BASE_URL");

function check(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function step(line: string): void {
  console.log(`ok  ${line}`);
}

// The body of a success with the expected status; anything else throws with the problem.
function expect<T, E>(
  result: { data?: T; error?: E; response: Response },
  status: number,
  what: string,
): T {
  const { data, error, response } = result;
  if (response.status !== status || data === undefined) {
    throw new Error(`${what}: expected ${status}, got ${response.status} ${JSON.stringify(error)}`);
  }
  return data;
}

// The problem document of an error with the expected status.
function expectProblem<T>(
  result: { data?: T; error?: Problem; response: Response },
  status: number,
  what: string,
): Problem {
  const { error, response } = result;
  const type = response.headers.get("content-type") ?? "";
  if (response.status !== status || error === undefined) {
    throw new Error(`${what}: expected ${status}, got ${response.status}`);
  }
  check(type.startsWith("application/problem+json"), `${what}: content-type ${type}`);
  return error;
}

const slug = `ts-${randomUUID().slice(0, 8)}`;
const email = `admin@${slug}.example.com`;
const password = "smoke password 1";

const publicApi = createClient<paths>({ baseUrl });

// Health.
const health = expect(await publicApi.GET("/health"), 200, "GET /health");
check(health.status === "ok", `health status ${health.status}`);
step(`GET /health: ${health.status}, version ${health.version}`);

// Onboarding, then the same request with the same Idempotency-Key: the first answer again,
// without fresh credentials.
const idempotencyKey = randomUUID();
const onboarding = {
  params: { header: { "Idempotency-Key": idempotencyKey } },
  body: { name: "Smoke TS Ltd", slug, admin: { email, password } },
};
const first = await publicApi.POST("/api/v1/tenants", onboarding);
const onboarded = expect(first, 201, "POST /api/v1/tenants");
check(onboarded.tenant.slug === slug, `tenant slug ${onboarded.tenant.slug}`);
check(onboarded.admin_user.email === email, `admin ${onboarded.admin_user.email}`);
check(typeof onboarded.tokens?.access_token === "string", "onboarding returns tokens");
check(first.response.headers.get("idempotent-replayed") === "false", "first answer not replayed");
step(`POST /api/v1/tenants: tenant ${onboarded.tenant.id} (${slug}, ${onboarded.tenant.plan})`);

const retry = await publicApi.POST("/api/v1/tenants", onboarding);
const replayed = expect(retry, 201, "POST /api/v1/tenants (retry)");
check(replayed.tenant.id === onboarded.tenant.id, `replayed tenant ${replayed.tenant.id}`);
check(replayed.admin_user.id === onboarded.admin_user.id, "replayed admin");
check(replayed.tokens == null, "a replay hands out no tokens");
check(retry.response.headers.get("idempotent-replayed") === "true", "Idempotent-Replayed: true");
step(`POST /api/v1/tenants again (same Idempotency-Key): replayed, same tenant ${replayed.tenant.id}`);

// Login: the answer is a token pair or an MFA challenge; this admin has no MFA.
const outcome = expect(
  await publicApi.POST("/api/v1/auth/login", { body: { tenant: slug, email, password } }),
  200,
  "POST /api/v1/auth/login",
);
if (!("access_token" in outcome)) throw new Error("login asked for MFA");
check(outcome.token_type === "Bearer", `token type ${outcome.token_type}`);
step(`POST /api/v1/auth/login: ${outcome.token_type} token, ${outcome.expires_in} s`);
const admin = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${outcome.access_token}` },
});

// Resources: create, get, list.
const resource = expect(
  await admin.POST("/api/v1/resources", { body: { name: "first", data: { colour: "blue" } } }),
  201,
  "POST /api/v1/resources",
);
check(resource.name === "first" && resource.version === 1, `resource ${JSON.stringify(resource)}`);
check(resource.data["colour"] === "blue", "resource data");
step(`POST /api/v1/resources: ${resource.id}, version ${resource.version}`);

const got = await admin.GET("/api/v1/resources/{id}", { params: { path: { id: resource.id } } });
const fetched = expect(got, 200, "GET /api/v1/resources/{id}");
check(fetched.id === resource.id && fetched.data["colour"] === "blue", "fetched resource");
check(got.response.headers.get("etag") === `"${fetched.version}"`, "ETag is the version");
step(`GET /api/v1/resources/{id}: ${fetched.name}, ETag ${got.response.headers.get("etag")}`);

const page = expect(
  await admin.GET("/api/v1/resources", { params: { query: { limit: 10 } } }),
  200,
  "GET /api/v1/resources",
);
check(page.items[0]?.id === resource.id, "the new resource heads the list");
step(`GET /api/v1/resources: ${page.items.length} item(s)`);

// A role, and a user holding it.
const role = expect(
  await admin.POST("/api/v1/roles", {
    body: {
      name: "support",
      description: "Reads users and resources",
      permissions: ["users:read", "resources:read"],
    },
  }),
  201,
  "POST /api/v1/roles",
);
check(!role.is_system && role.permissions.includes("resources:read"), `role ${JSON.stringify(role)}`);
step(`POST /api/v1/roles: ${role.name} [${role.permissions.join(", ")}]`);

const user = expect(
  await admin.POST("/api/v1/users", {
    body: { email: `bob@${slug}.example.com`, password: "another password", roles: [role.name] },
  }),
  201,
  "POST /api/v1/users",
);
check(user.roles.length === 1 && user.roles[0] === role.name, `user roles ${user.roles.join(",")}`);
step(`POST /api/v1/users: ${user.email} with role ${user.roles.join(", ")}`);

// An API key, then requests made with it.
const created = expect(
  await admin.POST("/api/v1/api-keys", {
    body: { name: "smoke-ts", permissions: ["resources:*", "jobs:read"] },
  }),
  201,
  "POST /api/v1/api-keys",
);
check(created.key.startsWith("tnt_"), "key format");
step(`POST /api/v1/api-keys: ${created.name}, ${created.key.slice(0, 12)}…`);
const withKey = createClient<paths>({ baseUrl, headers: { "X-API-Key": created.key } });

const keyPage = expect(await withKey.GET("/api/v1/resources"), 200, "GET /api/v1/resources (key)");
check(keyPage.items.some((r) => r.id === resource.id), "the key sees the resource");
step(`GET /api/v1/resources with X-API-Key: ${keyPage.items.length} item(s)`);

// A job: submitted with the token, read with the key.
const accepted = expect(
  await admin.POST("/api/v1/jobs", { body: { type: "echo", payload: { message: "hello" } } }),
  202,
  "POST /api/v1/jobs",
);
check(accepted.status === "queued", `job status ${accepted.status}`);
step(`POST /api/v1/jobs: ${accepted.id} ${accepted.status}`);

const job = expect(
  await withKey.GET("/api/v1/jobs/{id}", { params: { path: { id: accepted.id } } }),
  200,
  "GET /api/v1/jobs/{id}",
);
check(job.id === accepted.id && job.payload["message"] === "hello", `job ${JSON.stringify(job)}`);
step(`GET /api/v1/jobs/{id}: ${job.type}, ${job.status}`);

// A send is one of two shapes (`oneOf` in the document, a union here): its own text, or
// a template filled from variables. Both together fit neither, for tsc and the server.
type SmsSend = paths["/api/v1/notifications/sms"]["post"]["requestBody"]["content"]["application/json"];
// @ts-expect-error: `body` and `template` together are neither shape.
const both: SmsSend = { to: "+15551234567", body: "Hello", template: "greeting" };
const template = expect(
  await admin.POST("/api/v1/notifications/templates", {
    body: { name: "greeting", channel: "sms", body: "Hello {{ name }}" },
  }),
  201,
  "POST /api/v1/notifications/templates",
);
check(template.channel === "sms" && template.subject == null, `template ${JSON.stringify(template)}`);
step(`POST /api/v1/notifications/templates: ${template.name} (${template.channel})`);
const fromTemplate = expect(
  await admin.POST("/api/v1/notifications/sms", {
    body: { to: "+15551234567", template: "greeting", variables: { name: "Ada" } },
  }),
  202,
  "POST /api/v1/notifications/sms (template)",
);
const ownText = expect(
  await admin.POST("/api/v1/notifications/sms", { body: { to: "+15551234567", body: "Hello" } }),
  202,
  "POST /api/v1/notifications/sms (body)",
);
check(fromTemplate.status === "queued" && ownText.status === "queued", "sends queued");
step(`POST /api/v1/notifications/sms: from a template ${fromTemplate.id}, own text ${ownText.id}`);
const refused = expectProblem(
  // Sent as is (the client's types refuse it, as above).
  await admin.POST("/api/v1/notifications/sms", { body: both as never }),
  422,
  "POST /api/v1/notifications/sms (body and template)",
);
step(`POST /api/v1/notifications/sms with body and template: 422, ${refused.errors?.[0]?.field}`);

// An error: a problem document, typed as Problem.
const missing = expectProblem(
  await withKey.GET("/api/v1/resources/{id}", { params: { path: { id: randomUUID() } } }),
  404,
  "GET /api/v1/resources/{missing}",
);
check(missing.status === 404 && missing.code === "NOT_FOUND", `problem ${JSON.stringify(missing)}`);
step(`GET /api/v1/resources/{missing}: 404 application/problem+json, ${missing.code}: ${missing.detail}`);

console.log(`TypeScript client tour passed: tenant ${slug}, resource ${resource.id}, job ${job.id}`);

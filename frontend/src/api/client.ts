import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { session as appSession, type Session } from "./session";

export type Schemas = components["schemas"];
export type ApiError = Schemas["ErrorBody"];
export type Api = Client<paths>;

/** Every path of the API starts with this prefix (it is part of the OpenAPI document's paths). */
export const API_PREFIX = "/api/v1";

export interface ApiOptions {
  /** Origin of the API; the page's own origin by default (the daemon serves both). */
  readonly origin?: string;
  readonly fetch?: (input: Request) => Promise<Response>;
}

/**
 * An API client typed by the generated schema. It sends the session's bearer token in the
 * Authorization header (never in a URL), and it is the one place where a 401 on an
 * authenticated request signs the user out with "Your session ended. Please sign in again."
 */
export function createApi(session: Session, options: ApiOptions = {}): Api {
  const sentTokens = new WeakMap<Request, string>();
  const auth: Middleware = {
    onRequest({ request }) {
      const token = session.token;
      if (token !== null && !request.headers.has("Authorization")) {
        request.headers.set("Authorization", `Bearer ${token}`);
        sentTokens.set(request, token);
      }
      return request;
    },
    onResponse({ request, response }) {
      const token = sentTokens.get(request);
      // A 401 to a request made without a session (sign-in with a wrong password) is an
      // ordinary error. With a session, the server no longer knows it: expired or revoked.
      if (response.status === 401 && token !== undefined) session.ended(token);
      return response;
    },
  };
  const client = createClient<paths>({
    // Empty: requests are relative to the page, so they stay on its origin.
    baseUrl: options.origin ?? "",
    ...(options.fetch ? { fetch: options.fetch } : {}),
    headers: { Accept: "application/json" },
  });
  client.use(auth);
  return client;
}

/** The app's API client, bound to the app's session. */
export const api: Api = createApi(appSession);

/** The `message` of an API error body, if `error` is one. */
export function errorMessage(error: unknown): string | null {
  if (typeof error === "object" && error !== null && "message" in error) {
    const { message } = error;
    if (typeof message === "string" && message.length > 0) return message;
  }
  return null;
}

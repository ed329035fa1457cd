import { api } from "./client";
import { call, type Outcome } from "./problem";

/**
 * Deletes the signed-in user's account for good. The server checks the password (403 when
 * wrong, 429 past the sign-in limits) and ends every session, this one included.
 */
export function deleteAccount(password: string): Promise<Outcome<unknown>> {
  return call(() => api.DELETE("/api/v1/me", { body: { password } }));
}

import { api } from "./client";
import { call, type Outcome } from "./problem";

/**
 * Changes the password. The server checks the current one (403 when wrong, 429 past the
 * sign-in limits) and ends every other session of the user; this one stays signed in.
 */
export function changePassword(currentPassword: string, newPassword: string): Promise<Outcome<unknown>> {
  return call(() =>
    api.POST("/api/v1/me/password", { body: { current_password: currentPassword, new_password: newPassword } }),
  );
}

import { errorMessage } from "./client";
import { t, tn } from "../i18n";

/** Why a request failed, in the terms a screen needs to explain it. */
export interface Problem {
  /** HTTP status, or 0 when the server could not be reached. */
  readonly status: number;
  /** The API's `message` (validation reasons are written for people), if any. */
  readonly message: string | null;
  /** Seconds from `Retry-After` (429, 503), if given. */
  readonly retryAfter: number | null;
}

/** The outcome of one API call. */
export type Outcome<T> = { readonly ok: true; readonly data: T } | { readonly ok: false; readonly problem: Problem };

/** The shape openapi-fetch answers with. */
interface FetchResult<T> {
  readonly data?: T;
  readonly error?: unknown;
  readonly response: Response;
}

/** Runs an API call and turns every way it can fail (network too) into a `Problem`. */
export async function call<T>(request: () => Promise<FetchResult<T>>): Promise<Outcome<T>> {
  try {
    const { data, error, response } = await request();
    if (response.ok) return { ok: true, data: data as T };
    return { ok: false, problem: problemOf(response, error) };
  } catch {
    return { ok: false, problem: { status: 0, message: null, retryAfter: null } };
  }
}

/** The problem an error response describes. */
export function problemOf(response: Response, body: unknown): Problem {
  const header = response.headers.get("Retry-After");
  const seconds = header !== null && /^\d+$/.test(header.trim()) ? Number(header.trim()) : null;
  return { status: response.status, message: errorMessage(body), retryAfter: seconds };
}

/** A sentence for the user: the API's reason when it gave one, else what the status means. */
export function describeProblem(problem: Problem): string {
  if (problem.status === 0) return t("error.network");
  if (problem.status === 429) {
    return problem.retryAfter !== null ? retryIn(problem.retryAfter) : t("problem.tooMany");
  }
  if (problem.message !== null) return problem.message;
  if (problem.status === 413) return t("problem.tooLarge");
  if (problem.status === 404) return t("problem.notFound");
  if (problem.status === 503) return t("problem.unavailable");
  return t("error.unexpected", { status: problem.status });
}

/** "Try again in 3 minutes." from a number of seconds. */
export function retryIn(seconds: number): string {
  if (seconds < 120) return tn("problem.retrySeconds", Math.max(1, seconds));
  if (seconds < 7200) return tn("problem.retryMinutes", Math.ceil(seconds / 60));
  return tn("problem.retryHours", Math.ceil(seconds / 3600));
}

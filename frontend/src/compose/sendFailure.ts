import { describeProblem, retryIn, type Problem } from "../api/problem";
import { t } from "../i18n";

/**
 * Why a message was not sent, always saying "not sent" (the draft stays): a relay outage
 * (502/503) or no connection, the hourly sending limit (429, with when to retry), or the
 * API's reason (a refused address, 400).
 */
export function sendFailure(problem: Problem): string {
  if (problem.status === 429) {
    return t("compose.notSentLimit", { retry: problem.retryAfter !== null ? retryIn(problem.retryAfter) : t("problem.tooMany") });
  }
  // The server's reason already says whether the draft is kept; without one, we say it.
  if ((problem.status === 502 || problem.status === 503 || problem.status === 0) && problem.message === null) {
    return t("compose.notSentKept", { reason: describeProblem(problem) });
  }
  return t("compose.notSent", { reason: describeProblem(problem) });
}

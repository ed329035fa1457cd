/**
 * A search as the URL holds it (`#/search?q=…&from=…`), so Back and shared links restore it,
 * and its mapping to the parameters of `GET /api/v1/search`. Pure: no DOM, no network.
 */

/** Every criterion of a search; empty strings mean "not set". */
export interface SearchQuery {
  readonly q: string;
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  /** `YYYY-MM-DD`, inclusive. */
  readonly after: string;
  /** `YYYY-MM-DD`, exclusive on the server; the screen shows it as "before". */
  readonly before: string;
  readonly hasAttachment: boolean;
  /** Tag name (the API looks tags up by name). */
  readonly tag: string;
}

/** The text criteria, which are edited the same way. */
export type TextCriterion = "from" | "to" | "subject" | "tag";

/** A search with nothing set. */
export const emptyQuery: SearchQuery = {
  q: "",
  from: "",
  to: "",
  subject: "",
  after: "",
  before: "",
  hasAttachment: false,
  tag: "",
};

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Reads a search from the URL; malformed dates are dropped, not sent to the server. */
export function parseSearchParams(params: URLSearchParams): SearchQuery {
  const text = (key: string) => (params.get(key) ?? "").trim();
  const date = (key: string) => {
    const v = text(key);
    return DATE.test(v) ? v : "";
  };
  return {
    q: text("q"),
    from: text("from"),
    to: text("to"),
    subject: text("subject"),
    after: date("after"),
    before: date("before"),
    hasAttachment: params.get("has_attachment") === "true",
    tag: text("tag"),
  };
}

/** The URL parameters of a search, in a fixed order, leaving out what is not set. */
export function toSearchParams(query: SearchQuery): URLSearchParams {
  const params = new URLSearchParams();
  const put = (key: string, value: string) => {
    const v = value.trim();
    if (v.length > 0) params.set(key, v);
  };
  put("q", query.q);
  put("from", query.from);
  put("to", query.to);
  put("subject", query.subject);
  put("after", query.after);
  put("before", query.before);
  if (query.hasAttachment) params.set("has_attachment", "true");
  put("tag", query.tag);
  return params;
}

/** True when no criterion is set: there is nothing to search for. */
export function isEmptyQuery(query: SearchQuery): boolean {
  return toSearchParams(query).toString() === "";
}

/** Query parameters of `GET /api/v1/search` for one page of `query`. */
export interface ApiSearchParams {
  q?: string;
  from?: string;
  to?: string;
  subject?: string;
  after?: string;
  before?: string;
  has_attachment?: boolean;
  tag?: string;
  cursor?: string;
  limit?: number;
}

/** The API's parameters for `query`; `cursor` continues from a previous page's `next`. */
export function toApiParams(query: SearchQuery, cursor: string | null, limit = 50): ApiSearchParams {
  const out: ApiSearchParams = { limit };
  const put = (key: "q" | "from" | "to" | "subject" | "after" | "before" | "tag", value: string) => {
    const v = value.trim();
    if (v.length > 0) out[key] = v;
  };
  put("q", query.q);
  put("from", query.from);
  put("to", query.to);
  put("subject", query.subject);
  put("after", query.after);
  // The user picks the last day to include; the API's `before` is exclusive.
  if (query.before !== "") put("before", nextDay(query.before));
  if (query.hasAttachment) out.has_attachment = true;
  put("tag", query.tag);
  if (cursor !== null) out.cursor = cursor;
  return out;
}

/** The day after a `YYYY-MM-DD` date, in the same form. */
export function nextDay(date: string): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** How many stored messages search cannot find yet, from the index watermark of a result. */
export function notSearchableYet(index: { stored: number; indexed: number; up_to_date: boolean }): number {
  return index.up_to_date ? 0 : Math.max(0, index.stored - index.indexed);
}

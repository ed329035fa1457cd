import { describe, expect, it } from "vitest";
import { emptyQuery, isEmptyQuery, nextDay, notSearchableYet, parseSearchParams, toApiParams, toSearchParams } from "./query";

describe("search query and URL", () => {
  it("round-trips every criterion through the URL", () => {
    const query = {
      q: "invoice march",
      from: "alice@example.test",
      to: "bob",
      subject: "Q1 & Q2",
      after: "2026-01-01",
      before: "2026-03-31",
      hasAttachment: true,
      tag: "Work stuff",
    };
    const params = toSearchParams(query);
    expect(params.toString()).toBe(
      "q=invoice+march&from=alice%40example.test&to=bob&subject=Q1+%26+Q2&after=2026-01-01&before=2026-03-31&has_attachment=true&tag=Work+stuff",
    );
    expect(parseSearchParams(new URLSearchParams(params.toString()))).toEqual(query);
  });

  it("leaves out criteria that are not set", () => {
    expect(toSearchParams({ ...emptyQuery, q: "  hi  " }).toString()).toBe("q=hi");
    expect(isEmptyQuery(emptyQuery)).toBe(true);
    expect(isEmptyQuery({ ...emptyQuery, hasAttachment: true })).toBe(false);
  });

  it("drops malformed dates and unknown parameters from a typed URL", () => {
    const q = parseSearchParams(new URLSearchParams("after=yesterday&before=2026-02-30x&has_attachment=1&x=y"));
    expect(q).toEqual(emptyQuery);
  });
});

describe("API parameters", () => {
  it("maps the query, sends the cursor, and makes the last day inclusive", () => {
    const query = { ...emptyQuery, from: "alice", before: "2026-02-28", hasAttachment: true, tag: "Work" };
    expect(toApiParams(query, "50", 25)).toEqual({
      from: "alice",
      before: "2026-03-01",
      has_attachment: true,
      tag: "Work",
      cursor: "50",
      limit: 25,
    });
    expect(toApiParams(emptyQuery, null)).toEqual({ limit: 50 });
  });

  it("counts days across months and leap years", () => {
    expect(nextDay("2028-02-28")).toBe("2028-02-29");
    expect(nextDay("2026-12-31")).toBe("2027-01-01");
  });
});

describe("index lag", () => {
  it("counts the stored messages not indexed yet, only when the index says it lags", () => {
    expect(notSearchableYet({ stored: 120, indexed: 97, up_to_date: false })).toBe(23);
    expect(notSearchableYet({ stored: 120, indexed: 120, up_to_date: true })).toBe(0);
    // Counters read at different moments can cross; never a negative count.
    expect(notSearchableYet({ stored: 5, indexed: 6, up_to_date: false })).toBe(0);
  });
});

import { describe, expect, it } from "vitest";
import { mergeFirstPage, type Discussion } from "./discussions";

const d = (id: string, minute: number): Discussion => ({
  id,
  last_activity: `2026-11-30T10:${String(minute).padStart(2, "0")}:00Z`,
  message_count: 1,
  unread_count: 0,
  trashed_count: 0,
  snippet: "",
  participants: [],
  tags: [],
  privacy: { privacy_index: 0, transport_tls: false, hops: 0, encrypted: false, signed: false, autocrypt: false, spam: false, multiple_from: false, untrusted_headers: 0, sender_authenticated: false, factors: [] },
});

const ids = (l: { items: readonly Discussion[] }) => l.items.map((x) => x.id);

describe("mergeFirstPage", () => {
  it("puts new and moved-up discussions first and keeps older pages with their cursor", () => {
    const loaded = { items: [d("b", 52), d("a", 50), d("c", 30), d("e", 10)], next: "after-e" };
    const page = { items: [d("new", 55), d("c", 54), d("a", 50)], next: "after-a" };
    const merged = mergeFirstPage(loaded, page);
    expect(ids(merged)).toEqual(["new", "c", "a", "e"]); // b, within the page's span, left the folder
    expect(merged.next).toBe("after-e");
  });

  it("drops a discussion moved out of the folder when the folder fits in one page", () => {
    const loaded = { items: [d("a", 50), d("b", 40)], next: null };
    const page = { items: [d("a", 50)], next: null };
    expect(ids(mergeFirstPage(loaded, page))).toEqual(["a"]);
  });

  it("takes the page's cursor when nothing older was loaded", () => {
    const merged = mergeFirstPage({ items: [], next: null }, { items: [d("a", 50)], next: "after-a" });
    expect(merged).toMatchObject({ next: "after-a" });
  });
});

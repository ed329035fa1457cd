import { describe, expect, it } from "vitest";
import { parseRoute, routeHash } from "./router";

const ID = "0b8e5f1c-3c1e-4c2a-9f5e-6a7b8c9d0e1f";

describe("routes", () => {
  it("reads every screen and writes it back the same", () => {
    for (const hash of ["#/", "#/trash", `#/d/${ID}`, "#/compose", `#/compose?draft=${ID}`, "#/search?q=invoice", "#/tags", "#/contacts", "#/settings"]) {
      expect(routeHash(parseRoute(hash))).toBe(hash);
    }
  });

  it("sends anything unknown or malformed to the inbox", () => {
    expect(parseRoute("").name).toBe("inbox");
    expect(parseRoute("#/nowhere").name).toBe("inbox");
    expect(parseRoute("#/d/not-an-id").name).toBe("inbox");
    expect(parseRoute("#/compose?draft=../../x")).toEqual({ name: "compose", draft: null });
  });
});

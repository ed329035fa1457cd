import { describe, expect, it } from "vitest";
import { completePiece, currentPiece, displayRecipient, parseRecipients } from "./recipients";

describe("recipient fields", () => {
  it("takes addresses from bare and named recipients, once each", () => {
    expect(parseRecipients('Ann <ann@example.test>, bob@example.test; "Doe, Jo" <jo@x.test>, BOB@example.test')).toEqual({
      addresses: ["ann@example.test", "bob@example.test", "jo@x.test"],
      invalid: [],
    });
  });

  it("reports pieces that are not addresses, and ignores empty ones", () => {
    expect(parseRecipients("bob@exa, , carol")).toEqual({ addresses: [], invalid: ["bob@exa", "carol"] });
    expect(parseRecipients("")).toEqual({ addresses: [], invalid: [] });
  });

  it("completes the piece being typed", () => {
    expect(currentPiece("ann@example.test, bo")).toBe("bo");
    expect(completePiece("ann@example.test, bo", "Bob <bob@example.test>")).toBe(
      "ann@example.test, Bob <bob@example.test>, ",
    );
    expect(completePiece("bo", "bob@example.test")).toBe("bob@example.test, ");
  });

  it("quotes names that would split the field", () => {
    expect(displayRecipient("Doe, Jo", "jo@x.test")).toBe('"Doe, Jo" <jo@x.test>');
    expect(displayRecipient(undefined, "jo@x.test")).toBe("jo@x.test");
    expect(parseRecipients(displayRecipient("Doe, Jo", "jo@x.test")).addresses).toEqual(["jo@x.test"]);
  });
});

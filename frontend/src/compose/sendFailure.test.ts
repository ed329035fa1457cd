import { describe, expect, it } from "vitest";
import { sendFailure } from "./sendFailure";

const problem = (status: number, message: string | null = null, retryAfter: number | null = null) => ({
  status,
  message,
  retryAfter,
});

describe("send failures", () => {
  it("say the message was not sent and the draft is kept when the relay is down", () => {
    expect(sendFailure(problem(503))).toBe(
      "Message not sent: Palisade is temporarily unavailable. Try again in a moment. Your draft is kept.",
    );
    expect(sendFailure(problem(0))).toContain("not sent");
    expect(sendFailure(problem(0))).toContain("Your draft is kept.");
  });

  it("pass on the server's reason once, without repeating that the draft is kept", () => {
    expect(sendFailure(problem(502, "the relay refused the message; the draft is kept"))).toBe(
      "Message not sent: the relay refused the message; the draft is kept",
    );
  });

  it("say when to retry past the sending limit", () => {
    expect(sendFailure(problem(429, "too many", 1800))).toBe(
      "Message not sent: you reached the sending limit. Try again in 30 minutes. Your draft is kept.",
    );
    expect(sendFailure(problem(429, null, 1))).toContain("Try again in 1 second.");
    expect(sendFailure(problem(429, null, 7200))).toContain("Try again in 2 hours.");
  });

  it("show a validation reason as the API wrote it", () => {
    expect(sendFailure(problem(400, "to: not an address"))).toBe("Message not sent: to: not an address");
  });
});

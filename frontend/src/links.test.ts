import { describe, expect, it } from "vitest";
import { domainInText, linkMismatch } from "./links";

describe("linkMismatch", () => {
  it("warns when the text names another domain than the link's", () => {
    expect(linkMismatch("https://www.paypal.com/login", "https://evil.example/paypal")).toEqual({
      shown: "paypal.com",
      target: "evil.example",
    });
    expect(linkMismatch("paypal.com", "https://paypal.com.evil.example/")).toEqual({
      shown: "paypal.com",
      target: "paypal.com.evil.example",
    });
    expect(linkMismatch("Sign in at mybank.example now", "http://10.0.0.1/")).not.toBeNull();
  });

  it("catches look-alike letters from another script", () => {
    // Cyrillic "а" in the href: the same text to the eye, another domain in punycode.
    expect(linkMismatch("paypal.com", "https://pаypal.com/")).not.toBeNull();
  });

  it("accepts the same domain, www., subdomains and case", () => {
    expect(linkMismatch("example.com", "https://www.example.com/a")).toBeNull();
    expect(linkMismatch("www.Example.COM", "https://example.com")).toBeNull();
    expect(linkMismatch("example.com", "https://mail.example.com/")).toBeNull();
    expect(linkMismatch("https://docs.example.com/x", "https://example.com/y")).toBeNull();
  });

  it("says nothing when the text names no domain", () => {
    expect(linkMismatch("Click here", "https://evil.example/")).toBeNull();
    expect(linkMismatch("Read report.pdf", "https://files.example/r")).toBeNull();
    expect(linkMismatch("Version 1.2.3", "https://example.com/")).toBeNull();
  });

  it("checks only web links", () => {
    expect(linkMismatch("bank.example", "mailto:someone@evil.example")).toBeNull();
  });
});

describe("domainInText", () => {
  it("finds a domain in a sentence and normalizes international names", () => {
    expect(domainInText("Visit bücher.example today.")).toBe("xn--bcher-kva.example");
    expect(domainInText("support@bank.example")).toBe("bank.example");
  });
});

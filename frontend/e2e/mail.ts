import { randomUUID } from "node:crypto";

/** A unique word, so a test finds its own mail among everything delivered before it. */
export function token(prefix: string): string {
  return `${prefix}${randomUUID().replace(/-/g, "").slice(0, 10)}`;
}

export interface MailOptions {
  readonly from?: string;
  readonly to: string;
  readonly subject: string;
  readonly text?: string;
  readonly html?: string;
  readonly date?: Date;
  readonly messageId?: string;
  readonly inReplyTo?: string;
}

/** A small RFC 5322 message: plain text, HTML, or both as multipart/alternative. */
export function mail(o: MailOptions): string {
  const head = [
    `From: ${o.from ?? "Bob Example <bob@remote.test>"}`,
    `To: ${o.to}`,
    `Subject: ${o.subject}`,
    `Date: ${(o.date ?? new Date()).toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <${o.messageId ?? `${randomUUID()}@remote.test`}>`,
    ...(o.inReplyTo ? [`In-Reply-To: <${o.inReplyTo}>`, `References: <${o.inReplyTo}>`] : []),
    "MIME-Version: 1.0",
  ];
  if (o.html !== undefined && o.text !== undefined) {
    return [
      ...head,
      'Content-Type: multipart/alternative; boundary="alt"',
      "",
      "--alt",
      "Content-Type: text/plain; charset=utf-8",
      "",
      o.text,
      "--alt",
      "Content-Type: text/html; charset=utf-8",
      "",
      o.html,
      "--alt--",
      "",
    ].join("\n");
  }
  if (o.html !== undefined) {
    return [...head, "Content-Type: text/html; charset=utf-8", "", o.html, ""].join("\n");
  }
  return [...head, "Content-Type: text/plain; charset=utf-8", "", o.text ?? "Hello.", ""].join("\n");
}

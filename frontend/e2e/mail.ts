import { randomUUID } from "node:crypto";

/** A unique word, so a test finds its own mail among everything delivered before it. */
export function token(prefix: string): string {
  return `${prefix}${randomUUID().replace(/-/g, "").slice(0, 10)}`;
}

/** A part after the body of a multipart/mixed message. */
export interface ExtraPart {
  /** `Content-Type`, parameters included. */
  readonly type: string;
  /** `Content-Disposition`, parameters included, when the part has one. */
  readonly disposition?: string;
  /** Text, or bytes (sent base64-encoded). */
  readonly body: string | Buffer;
}

export interface MailOptions {
  /** One `From` field per entry (a message naming several senders has several). */
  readonly from?: string | readonly string[];
  readonly to: string;
  readonly subject: string;
  readonly text?: string;
  readonly html?: string;
  readonly date?: Date;
  readonly messageId?: string;
  readonly inReplyTo?: string;
  /** More parts after the body, which then becomes the first part of a multipart/mixed. */
  readonly parts?: readonly ExtraPart[];
}

/** A small RFC 5322 message: plain text, HTML, or both as multipart/alternative; with `parts`,
 * that body and the parts in a multipart/mixed. */
export function mail(o: MailOptions): string {
  const froms = typeof o.from === "string" ? [o.from] : (o.from ?? ["Bob Example <bob@remote.test>"]);
  const head = [
    ...froms.map((f) => `From: ${f}`),
    `To: ${o.to}`,
    `Subject: ${o.subject}`,
    `Date: ${(o.date ?? new Date()).toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <${o.messageId ?? `${randomUUID()}@remote.test`}>`,
    ...(o.inReplyTo ? [`In-Reply-To: <${o.inReplyTo}>`, `References: <${o.inReplyTo}>`] : []),
    "MIME-Version: 1.0",
  ];
  if (o.parts === undefined || o.parts.length === 0) return [...head, ...body(o), ""].join("\n");
  return [
    ...head,
    'Content-Type: multipart/mixed; boundary="mixed"',
    "",
    "--mixed",
    ...body(o),
    ...o.parts.flatMap((p) => [
      "--mixed",
      `Content-Type: ${p.type}`,
      ...(p.disposition === undefined ? [] : [`Content-Disposition: ${p.disposition}`]),
      ...(typeof p.body === "string"
        ? ["", p.body]
        : ["Content-Transfer-Encoding: base64", "", ...(p.body.toString("base64").match(/.{1,76}/g) ?? [])]),
    ]),
    "--mixed--",
    "",
  ].join("\n");
}

/** The body's own header fields and content: plain text, HTML, or both as multipart/alternative. */
function body(o: MailOptions): string[] {
  if (o.html !== undefined && o.text !== undefined) {
    return [
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
    ];
  }
  if (o.html !== undefined) return ["Content-Type: text/html; charset=utf-8", "", o.html];
  return ["Content-Type: text/plain; charset=utf-8", "", o.text ?? "Hello."];
}

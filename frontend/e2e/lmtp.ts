import { connect, type Socket } from "node:net";
import { lmtp } from "./env";

/**
 * Delivers one message over LMTP, the way Postfix hands mail to Palisade, and requires a 250
 * for every recipient. `message` may use LF line ends; it is sent with CRLF and dot-stuffed.
 */
export async function deliver(recipients: readonly string[], message: string, from = "sender@remote.test"): Promise<void> {
  const socket = connect(lmtp.port, lmtp.host);
  const replies = replyReader(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    await expectCode(replies, 220, "greeting");
    await command(socket, replies, "LHLO browser-tests.localhost", 250);
    await command(socket, replies, `MAIL FROM:<${from}>`, 250);
    for (const rcpt of recipients) await command(socket, replies, `RCPT TO:<${rcpt}>`, 250);
    await command(socket, replies, "DATA", 354);
    socket.write(dotStuff(toCrlf(message)) + ".\r\n");
    // LMTP answers once per accepted recipient.
    for (const rcpt of recipients) await expectCode(replies, 250, `delivery to ${rcpt}`);
    await command(socket, replies, "QUIT", 221);
  } finally {
    socket.destroy();
  }
}

/** CRLF line ends, ending with one. */
export function toCrlf(text: string): string {
  const crlf = text.replace(/\r?\n/g, "\r\n");
  return crlf.endsWith("\r\n") ? crlf : `${crlf}\r\n`;
}

/** RFC 5321 transparency: a line starting with "." gets another. */
function dotStuff(text: string): string {
  return (text.startsWith(".") ? "." : "") + text.replace(/\r\n\./g, "\r\n..");
}

interface Reply {
  readonly code: number;
  readonly text: string;
}

/** Reads whole (possibly multi-line) replies off the socket, one promise per reply. */
function replyReader(socket: Socket): () => Promise<Reply> {
  let buffer = "";
  let lines: string[] = [];
  const ready: Reply[] = [];
  const waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  const fail = (error: Error) => {
    for (const w of waiting.splice(0)) w.reject(error);
  };
  socket.setEncoding("latin1");
  socket.on("data", (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf("\r\n")) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      lines.push(line);
      if (line.charAt(3) !== "-") {
        const reply = { code: Number(line.slice(0, 3)), text: lines.join("\n") };
        lines = [];
        const w = waiting.shift();
        if (w) w.resolve(reply);
        else ready.push(reply);
      }
    }
  });
  socket.on("error", fail);
  socket.on("close", () => fail(new Error(`LMTP server closed the connection (pending: ${buffer})`)));
  return () => {
    const r = ready.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  };
}

async function expectCode(next: () => Promise<Reply>, code: number, what: string): Promise<void> {
  const reply = await next();
  if (reply.code !== code) throw new Error(`LMTP ${what}: expected ${code}, got ${reply.text}`);
}

async function command(socket: Socket, next: () => Promise<Reply>, line: string, code: number): Promise<void> {
  socket.write(`${line}\r\n`);
  await expectCode(next, code, line);
}

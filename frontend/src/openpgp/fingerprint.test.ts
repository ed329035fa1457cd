import { describe, expect, it } from "vitest";
import { crc24, dearmor, fingerprint, groupFingerprint, splitArmoredKeys } from "./fingerprint";

// Generated with `gpg --batch --quick-gen-key`; gpg printed the fingerprints below.
const ED25519 = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEaw2hxBYJKwYBBAHaRw8BAQdALUzJSfs/Z8xlQcvz4FQFG7ADMljl1q1ByOL3
0DnnaE60HFRlc3QgS2V5IDx0ZXN0QGV4YW1wbGUudGVzdD6IjwQTFggAOBYhBFps
It+2UkwvJfetN4jv2mS6RIEwBQJrDaHEAhsDBQsJCAcCBhUKCQgLAgQWAgMBAh4B
AheAAAoJEIjv2mS6RIEwojEBANCJrR3kqTglmzXHFGLZUJiq038D09yq7mt2wEUy
GouMAPdDfRGa3XPdZfAutu7ZSldWCYxLcb6VvrAv1c0rl3oF
=kDN+
-----END PGP PUBLIC KEY BLOCK-----`;
const ED25519_FPR = "5A6C22DFB6524C2F25F7AD3788EFDA64BA448130";

const RSA = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mQENBGsNocQBCADWJd5FRRucAHbd2hOv0VxqaMffLmMvn07LsUJ1T9iBPee2VHoi
zSKpWc3ZTFUQIaOH4ZEi3fXsdlOy2fyZaLG9SiOoXs998vnhisWUtPpK3KCwynys
NCCRvgC5cTy89OVf/bS7EPXfFp6JAG9zr1e4KxwRxizeLoBP16DpZ2fEHpDKqaW6
gzuWfYGkpgSZARz9+lWN0QxKtY26YPmUeB5PwZnGwOkgfDF65ITjdakT/cCHS3dw
8/YlJTXOrUxhDq92w/s0hCB6jXZzxzSRsmPkV1AykAxrwITLooSKbveJb5ZikYSX
ZQgJ5gRFoebU8WexUIbsFDHloE62q7+HHjx9ABEBAAG0GlJTQSBLZXkgPHJzYUBl
eGFtcGxlLnRlc3Q+iQFOBBMBCgA4FiEERzpMAJ4YXy6rUPt0v6pVhs1PF8YFAmsN
ocQCGwMFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AACgkQv6pVhs1PF8aMSAf/SLOj
E6VRjQobGQ9+6QJKA4P3I4PjslhDDVYOIffVOkX+ftZcZlm5T1fWqY/4uhQtPP5M
EYiOUliJkDQUw4PJMrVk/pb5pkMHs/JufhG8TDoehijVUTVwjVvwfU/0QxgJHSTk
9vn4LDyOwhN7ZP+lNOmtd7x0o/INcesFb15s+us1n9sh3NZnASNcRcMTc6un8CLe
0i+Zul1+iWEF5kHu/asTn84sDrkiE/i7tAlfmknFKEly430ONPLHBbL+T/CCNf+r
/PpvTaYt/ICbvtoBI/incwxvJ7LZQoSZmLNfe7umQnahNTNN4mTqAZYkleSfAOBk
74x9hpV/upN57C/HZQ==
=Ykea
-----END PGP PUBLIC KEY BLOCK-----`;
const RSA_FPR = "473A4C009E185F2EAB50FB74BFAA5586CD4F17C6";

describe("OpenPGP fingerprints", () => {
  it("match gpg's for a v4 Ed25519 key", async () => {
    expect(await fingerprint(ED25519)).toEqual({ ok: true, version: 4, hex: ED25519_FPR });
  });

  it("match gpg's for a v4 RSA key (two-byte packet length)", async () => {
    expect(await fingerprint(RSA)).toEqual({ ok: true, version: 4, hex: RSA_FPR });
  });

  it("read a key pasted with armor headers, indentation and CRLF line ends", async () => {
    const lines = ED25519.split("\n");
    lines.splice(1, 0, "Comment: pasted from a mail");
    const pasted = "  " + lines.join("\r\n  ") + "\r\n";
    expect(await fingerprint(pasted)).toEqual({ ok: true, version: 4, hex: ED25519_FPR });
  });

  it("refuse a key whose data no longer matches its CRC-24 line", async () => {
    // Change one base64 character of the data (not the checksum line).
    const damaged = ED25519.replace("mDMEaw2hxBYJ", "mDMEaw2hxBYK");
    expect(await fingerprint(damaged)).toEqual({ ok: false, problem: "bad-checksum" });
  });

  it("say so when the text is not an armored key", async () => {
    expect(await fingerprint("hello")).toEqual({ ok: false, problem: "not-armored" });
  });

  it("say so when the first packet is not a public key of a known version", async () => {
    // A v3 public-key packet (old format, tag 6), armored without a checksum.
    const body = btoa(String.fromCharCode(0x98, 0x03, 0x03, 0x00, 0x00));
    const armored = `-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n${body}\n-----END PGP PUBLIC KEY BLOCK-----`;
    expect(await fingerprint(armored)).toEqual({ ok: false, problem: "unsupported-version" });
  });
});

describe("armor", () => {
  it("computes RFC 4880's CRC-24 (the empty input gives the initial value)", () => {
    expect(crc24(new Uint8Array())).toBe(0xb704ce);
    expect(dearmor(ED25519)).toBeInstanceOf(Uint8Array);
  });

  it("splits several pasted keys into blocks", () => {
    expect(splitArmoredKeys(`${ED25519}\n\n${RSA}`)).toEqual([ED25519, RSA]);
    expect(splitArmoredKeys("no key")).toEqual([]);
  });

  it("groups a fingerprint by four", () => {
    expect(groupFingerprint(ED25519_FPR)).toBe("5A6C 22DF B652 4C2F 25F7 AD37 88EF DA64 BA44 8130");
  });
});

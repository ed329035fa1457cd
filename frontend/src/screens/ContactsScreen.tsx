import "../writing.css";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { call, describeProblem } from "../api/problem";
import { isAddress } from "../compose/recipients";
import { t, type MessageKey } from "../i18n";
import { formatPoints } from "../privacyFactors";
import { fingerprint, groupFingerprint, splitArmoredKeys, type FingerprintResult, type KeyProblem } from "../openpgp/fingerprint";
import { BusyButton } from "../components/BusyButton";

type Contact = Schemas["ContactView"];
type ContactRequest = Schemas["ContactRequest"];

/** Contacts per page of the list. */
const PAGE = 50;

/** What the edit panel shows: nothing, a new contact, or one from the list. */
type Editing = null | { readonly kind: "new" } | { readonly kind: "existing"; readonly contact: Contact };

/** The address book, with public keys. */
export function ContactsScreen() {
  const [contacts, setContacts] = useState<Contact[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<Editing>(null);
  const [status, setStatus] = useState("");
  const newButton = useRef<HTMLButtonElement>(null);

  const load = async (cursor: string | null) => {
    setLoading(true);
    const outcome = await call(() =>
      api.GET("/api/v1/contacts", { params: { query: cursor === null ? { limit: PAGE } : { cursor, limit: PAGE } } }),
    );
    setLoading(false);
    if (!outcome.ok) {
      setError(describeProblem(outcome.problem));
      return;
    }
    setError(null);
    setContacts((list) => (cursor === null || list === null ? outcome.data.items : [...list, ...outcome.data.items]));
    setNext(outcome.data.next ?? null);
  };

  useEffect(() => {
    void load(null);
  }, []);

  const saved = (contact: Contact, isNew: boolean) => {
    setContacts((list) => {
      const rest = (list ?? []).filter((c) => c.id !== contact.id);
      return isNew ? [contact, ...rest] : (list ?? []).map((c) => (c.id === contact.id ? contact : c));
    });
    setEditing({ kind: "existing", contact });
    setStatus(t("contacts.saved", { name: contactLabel(contact) }));
  };

  const deleted = (contact: Contact) => {
    setContacts((list) => (list ?? []).filter((c) => c.id !== contact.id));
    setEditing(null);
    setStatus(t("contacts.deleted", { name: contactLabel(contact) }));
    newButton.current?.focus();
  };

  const current = editing?.kind === "existing" ? editing.contact.id : null;
  return (
    <>
      <h1>{t("nav.contacts")}</h1>
      <p role="status" class="visually-hidden">
        {status}
      </p>
      <div class="contacts">
        <div class="contact-list-pane">
          <button ref={newButton} type="button" class="button" onClick={() => setEditing({ kind: "new" })}>
            {t("contacts.new")}
          </button>
          {error !== null && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          {contacts === null ? (
            <p class="muted">{t("app.loading")}</p>
          ) : contacts.length === 0 ? (
            <p>{t("contacts.empty")}</p>
          ) : (
            <ul class="contact-list" aria-label={t("contacts.list")}>
              {contacts.map((c) => (
                <li key={c.id}>
                  <button
                    type="button"
                    class="contact-item"
                    aria-current={c.id === current ? "true" : undefined}
                    onClick={() => setEditing({ kind: "existing", contact: c })}
                  >
                    <span class="contact-name">{contactLabel(c)}</span>
                    {c.name !== undefined && c.name !== "" && <span class="muted contact-address">{c.addresses[0]}</span>}
                  </button>
                </li>
              ))}
            </ul>
          )}
          {next !== null && (
            <BusyButton type="button" class="button button--secondary load-more" busy={loading} onClick={() => void load(next)}>
              {loading ? t("list.loadingMore") : t("list.loadMore")}
            </BusyButton>
          )}
        </div>
        {editing !== null && (
          <ContactForm
            key={editing.kind === "new" ? "new" : editing.contact.id}
            contact={editing.kind === "new" ? null : editing.contact}
            onSaved={saved}
            onDeleted={deleted}
            onCancel={() => {
              setEditing(null);
              newButton.current?.focus();
            }}
          />
        )}
      </div>
    </>
  );
}

/** A contact's name, or its first address when it has none. */
function contactLabel(c: Contact): string {
  return c.name !== undefined && c.name.trim() !== "" ? c.name : (c.addresses[0] ?? "");
}

function ContactForm(props: {
  contact: Contact | null;
  onSaved: (c: Contact, isNew: boolean) => void;
  onDeleted: (c: Contact) => void;
  onCancel: () => void;
}) {
  const { contact, onSaved, onDeleted, onCancel } = props;
  const [name, setName] = useState(contact?.name ?? "");
  const [addresses, setAddresses] = useState((contact?.addresses ?? []).join("\n"));
  const [keys, setKeys] = useState((contact?.public_keys ?? []).join("\n\n"));
  const [problem, setProblem] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    heading.current?.focus();
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    const list = addresses
      .split(/[\n,;]/)
      .map((a) => a.trim())
      .filter((a) => a !== "");
    const bad = list.filter((a) => !isAddress(a));
    if (list.length === 0) {
      setProblem(t("contacts.addressRequired"));
      return;
    }
    if (bad.length > 0) {
      setProblem(t("contacts.badAddresses", { list: bad.join(", ") }));
      return;
    }
    const blocks = splitArmoredKeys(keys);
    if (keys.trim() !== "" && blocks.length === 0) {
      setProblem(t("contacts.keyNotArmored"));
      return;
    }
    const body: ContactRequest = { name: name.trim(), addresses: list, public_keys: blocks };
    setSaving(true);
    const outcome =
      contact === null
        ? await call(() => api.POST("/api/v1/contacts", { body }))
        : await call(() => api.PUT("/api/v1/contacts/{id}", { params: { path: { id: contact.id } }, body }));
    setSaving(false);
    if (!outcome.ok) {
      setProblem(describeProblem(outcome.problem));
      return;
    }
    setProblem(null);
    onSaved(outcome.data, contact === null);
  };

  const remove = async () => {
    if (contact === null || !window.confirm(t("contacts.deleteConfirm", { name: contactLabel(contact) }))) return;
    const outcome = await call(() => api.DELETE("/api/v1/contacts/{id}", { params: { path: { id: contact.id } } }));
    if (!outcome.ok && outcome.problem.status !== 404) {
      setProblem(describeProblem(outcome.problem));
      return;
    }
    onDeleted(contact);
  };

  return (
    <section class="contact-editor" aria-labelledby="contact-editor-title">
      <h2 id="contact-editor-title" ref={heading} tabIndex={-1}>
        {contact === null ? t("contacts.newTitle") : t("contacts.editTitle", { name: contactLabel(contact) })}
      </h2>
      <form class="contact-form" noValidate onSubmit={(e) => void submit(e)}>
        <div class="field">
          <label for="contact-name">{t("contacts.name")}</label>
          <input id="contact-name" type="text" maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="contact-addresses">{t("contacts.addresses")}</label>
          <textarea
            id="contact-addresses"
            rows={3}
            aria-describedby="contact-addresses-hint"
            value={addresses}
            onInput={(e) => setAddresses(e.currentTarget.value)}
          />
          <p class="hint" id="contact-addresses-hint">
            {t("contacts.addressesHint")}
          </p>
        </div>
        <div class="field">
          <label for="contact-key">{t("contacts.key")}</label>
          <textarea
            id="contact-key"
            class="mono"
            rows={6}
            spellcheck={false}
            aria-describedby="contact-key-fingerprints"
            value={keys}
            onInput={(e) => setKeys(e.currentTarget.value)}
          />
          <Fingerprints text={keys} />
        </div>
        {contact !== null && <KeyState contact={contact} />}
        {problem !== null && (
          <p class="error" role="alert">
            {problem}
          </p>
        )}
        <div class="row">
          <BusyButton type="submit" class="button" busy={saving}>
            {t("contacts.save")}
          </BusyButton>
          <button type="button" class="button button--secondary" onClick={onCancel}>
            {t("contacts.cancel")}
          </button>
          {contact !== null && (
            <button type="button" class="button button--danger" onClick={() => void remove()}>
              {t("contacts.delete", { name: contactLabel(contact) })}
            </button>
          )}
        </div>
      </form>
    </section>
  );
}

/** The contact's features that raised its privacy index, in the server's names. */
const contactFactors: Record<string, MessageKey> = {
  key: "contacts.factor.key",
  prefer_encrypt_mutual: "contacts.factor.prefer_encrypt_mutual",
  long_known: "contacts.factor.long_known",
  correspondent: "contacts.factor.correspondent",
  authenticated_mail: "contacts.factor.authenticated_mail",
};

/** What mail taught about the contact: the Autocrypt key, its history, its privacy index. */
function KeyState({ contact }: { contact: Contact }) {
  const peer = contact.autocrypt;
  return (
    <section class="contact-key-state" aria-labelledby="contact-key-state-title">
      <h3 id="contact-key-state-title">{t("contacts.keyState")}</h3>
      {peer === undefined ? (
        <p class="muted">{t("contacts.autocryptNone")}</p>
      ) : (
        <>
          <p class="fingerprint">{t("contacts.autocryptKey", { fingerprint: groupFingerprint(peer.fingerprint) })}</p>
          <p>{t(peer.prefer_encrypt === "mutual" ? "contacts.preferEncrypt.mutual" : "contacts.preferEncrypt.nopreference")}</p>
          <p>{t("contacts.lastSeen", { date: new Date(peer.last_seen).toLocaleString() })}</p>
        </>
      )}
      <p>{t("contacts.history", { messages: contact.history.messages, authenticated: contact.history.authenticated })}</p>
      <p>{t("contacts.privacyIndex", { score: contact.privacy.privacy_index })}</p>
      {contact.privacy.factors.length > 0 && (
        <ul class="contact-factors">
          {contact.privacy.factors.map((f) => (
            <li key={f.feature}>
              {formatPoints(f.points)} {contactFactors[f.feature] === undefined ? f.feature : t(contactFactors[f.feature] as MessageKey)}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const keyProblems: Record<KeyProblem, MessageKey> = {
  "not-armored": "contacts.key.notArmored",
  "bad-base64": "contacts.key.badBase64",
  "bad-checksum": "contacts.key.badChecksum",
  "no-public-key": "contacts.key.noPublicKey",
  "unsupported-version": "contacts.key.unsupported",
};

/** The fingerprint of each pasted key, recomputed as the text changes. */
function Fingerprints({ text }: { text: string }) {
  const [results, setResults] = useState<FingerprintResult[]>([]);
  useEffect(() => {
    let live = true;
    const blocks = splitArmoredKeys(text);
    // Text that starts a key but is not complete yet still gets an explanation.
    const pieces = blocks.length === 0 && text.trim() !== "" ? [text] : blocks;
    void Promise.all(pieces.map((b) => fingerprint(b))).then((r) => {
      if (live) setResults(r);
    });
    return () => {
      live = false;
    };
  }, [text]);
  return (
    <div id="contact-key-fingerprints" aria-live="polite">
      {results.map((r, i) =>
        r.ok ? (
          <p key={i} class="fingerprint">
            {t("contacts.fingerprint", { fingerprint: groupFingerprint(r.hex) })}
            {r.version !== 4 && <span class="muted">{` (v${r.version})`}</span>}
          </p>
        ) : (
          <p key={i} class="field-error">
            {t(keyProblems[r.problem])}
          </p>
        ),
      )}
    </div>
  );
}

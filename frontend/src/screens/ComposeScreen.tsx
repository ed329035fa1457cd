import "../writing.css";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { call, describeProblem, type Problem } from "../api/problem";
import { Attachments, type AttachmentState } from "../compose/Attachments";
import { flash, prepareFlash } from "../compose/flash";
import { composeOrigin } from "../compose/origin";
import { formatRecipients, parseRecipients } from "../compose/recipients";
import { sendFailure } from "../compose/sendFailure";
import { undoSeconds } from "../compose/undo";
import { BusyButton } from "../components/BusyButton";
import { RecipientField } from "../components/RecipientField";
import { t } from "../i18n";
import { navigate, parseRoute } from "../router";

type DraftView = Schemas["DraftView"];
type DraftRequest = Schemas["DraftRequest"];

/** What the user edits; recipients as typed. */
interface Fields {
  readonly from: string;
  readonly to: string;
  readonly cc: string;
  readonly bcc: string;
  readonly subject: string;
  readonly body: string;
}

type SaveState =
  | { readonly kind: "idle" }
  | { readonly kind: "saving" }
  | { readonly kind: "saved" }
  | { readonly kind: "failed"; readonly text: string; readonly retrying: boolean };

type SendState =
  | { readonly kind: "idle" }
  | { readonly kind: "preparing" }
  | { readonly kind: "countdown"; readonly remaining: number }
  | { readonly kind: "sending" }
  | { readonly kind: "failed"; readonly text: string };

/** Autosave waits this long after the last keystroke. */
const SAVE_DELAY_MS = 800;
/** A save that failed for a passing reason (network, 5xx, 429) is tried again after this. */
const RETRY_DELAY_MS = 5000;

/** Drafts just created here, so the screen opened on them does not fetch them again. */
const created = new Map<string, DraftView>();

/** Writing a new message, a reply or a forward; `draft` resumes an existing draft. */
export function ComposeScreen({ draft }: { draft: string | null }) {
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    prepareFlash();
    if (draft !== null) return;
    // A new message is a draft at once: it has an id for autosave and attachments, and the
    // URL then names it, so a reload or Back comes back to the same draft.
    let live = true;
    void call(() => api.POST("/api/v1/drafts", { body: { to: [], cc: [], bcc: [], body: "" } })).then((outcome) => {
      if (!live) {
        // The user left before the draft existed: it would only be an empty draft to find later.
        if (outcome.ok) void call(() => api.DELETE("/api/v1/drafts/{id}", { params: { path: { id: outcome.data.id } } }));
        return;
      }
      if (outcome.ok) {
        created.set(outcome.data.id, outcome.data);
        navigate({ name: "compose", draft: outcome.data.id }, true);
      } else {
        setFailure(describeProblem(outcome.problem));
      }
    });
    return () => {
      live = false;
    };
  }, [draft]);

  if (draft === null) {
    return (
      <section class="compose" aria-labelledby="compose-title">
        <h1 id="compose-title">{t("compose.title.new")}</h1>
        {failure === null ? <p class="muted">{t("app.loading")}</p> : <p role="alert" class="error">{failure}</p>}
      </section>
    );
  }
  return <DraftEditor id={draft} />;
}

function DraftEditor({ id }: { id: string }) {
  const [loaded, setLoaded] = useState<DraftView | null>(() => created.get(id) ?? null);
  const [loadError, setLoadError] = useState<string | null>(null);

  useEffect(() => {
    if (loaded !== null) {
      created.delete(id);
      return;
    }
    let live = true;
    void call(() => api.GET("/api/v1/drafts/{id}", { params: { path: { id } } })).then((outcome) => {
      if (!live) return;
      if (outcome.ok) setLoaded(outcome.data);
      else setLoadError(outcome.problem.status === 404 ? t("compose.gone") : describeProblem(outcome.problem));
    });
    return () => {
      live = false;
    };
  }, [id]);

  if (loaded === null) {
    return (
      <section class="compose" aria-labelledby="compose-title">
        <h1 id="compose-title">{t("compose.title.new")}</h1>
        {loadError === null ? (
          <p class="muted">{t("app.loading")}</p>
        ) : (
          <p role="alert" class="error">
            {loadError}
          </p>
        )}
      </section>
    );
  }
  return <Editor draft={loaded} />;
}

function fieldsOf(d: DraftView): Fields {
  return {
    from: d.from ?? "",
    to: formatRecipients(d.to),
    cc: formatRecipients(d.cc),
    bcc: formatRecipients(d.bcc),
    subject: d.subject,
    body: d.body,
  };
}

function requestOf(f: Fields, d: DraftView): DraftRequest {
  const request: DraftRequest = {
    to: parseRecipients(f.to).addresses,
    cc: parseRecipients(f.cc).addresses,
    bcc: parseRecipients(f.bcc).addresses,
    subject: f.subject,
    body: f.body,
  };
  if (f.from !== "") request.from = f.from;
  // PUT replaces the draft: what it answers or forwards must be sent again or it is lost.
  if (d.in_reply_to !== undefined) request.in_reply_to = d.in_reply_to;
  if (d.forward_of !== undefined) request.forward_of = d.forward_of;
  return request;
}

function isBlank(f: Fields, files: number): boolean {
  return f.to.trim() === "" && f.cc.trim() === "" && f.bcc.trim() === "" && f.subject.trim() === "" && f.body.trim() === "" && files === 0;
}

function Editor({ draft }: { draft: DraftView }) {
  const [fields, setFields] = useState<Fields>(() => fieldsOf(draft));
  const [identities, setIdentities] = useState<string[]>(draft.from !== undefined ? [draft.from] : []);
  const [save, setSave] = useState<SaveState>({ kind: "idle" });
  const [send, setSend] = useState<SendState>({ kind: "idle" });
  const [formError, setFormError] = useState<string | null>(null);
  const attached = draft.attachments;
  const [files, setFiles] = useState<AttachmentState>({ count: attached.length, uploading: false, failed: 0 });
  const uploads = useRef(new Set<Promise<{ readonly ok: boolean }>>());

  const latest = useRef(fields);
  latest.current = fields;
  const filesRef = useRef(files);
  filesRef.current = files;
  const version = useRef(0);
  const savedVersion = useRef(0);
  const inFlight = useRef<Promise<boolean> | null>(null);
  const saveTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const sendTimer = useRef<ReturnType<typeof setInterval>>(undefined);
  const finished = useRef(false);
  const toField = useRef<HTMLDivElement>(null);
  const bodyField = useRef<HTMLTextAreaElement>(null);
  const sendButton = useRef<HTMLButtonElement>(null);
  const undoButton = useRef<HTMLButtonElement>(null);

  const kind = draft.in_reply_to !== undefined ? "reply" : draft.forward_of !== undefined ? "forward" : "new";
  const busy = send.kind === "preparing" || send.kind === "countdown" || send.kind === "sending";

  useEffect(() => {
    let live = true;
    void call(() => api.GET("/api/v1/me/identities")).then((outcome) => {
      if (!live || !outcome.ok) return;
      const addresses = outcome.data.map((i) => i.address);
      if (draft.from !== undefined && !addresses.includes(draft.from)) addresses.unshift(draft.from);
      setIdentities(addresses);
      const preferred = outcome.data.find((i) => i.default)?.address ?? addresses[0];
      if (latest.current.from === "" && preferred !== undefined) setFields((f) => ({ ...f, from: preferred }));
    });
    // Start where the user writes: the message under a quoted reply, otherwise the recipients.
    // After a frame, because the app moves focus to <main> when the screen changes.
    const frame = requestAnimationFrame(() => {
      if (kind === "reply" && bodyField.current) {
        bodyField.current.focus();
        bodyField.current.setSelectionRange(0, 0);
        bodyField.current.scrollTop = 0;
      } else {
        toField.current?.querySelector("input")?.focus();
      }
    });
    return () => {
      live = false;
      cancelAnimationFrame(frame);
    };
  }, []);

  /** Saves what is on screen; true when the server has it. */
  const saveNow = async (): Promise<boolean> => {
    clearTimeout(saveTimer.current);
    while (inFlight.current !== null) await inFlight.current;
    if (savedVersion.current === version.current) return true;
    const v = version.current;
    setSave({ kind: "saving" });
    const attempt = call(() =>
      api.PUT("/api/v1/drafts/{id}", { params: { path: { id: draft.id } }, body: requestOf(latest.current, draft) }),
    ).then((outcome) => {
      if (outcome.ok) {
        savedVersion.current = Math.max(savedVersion.current, v);
        if (!finished.current) setSave(version.current === v ? { kind: "saved" } : { kind: "saving" });
        return true;
      }
      if (!finished.current) reportSaveFailure(outcome.problem);
      return false;
    });
    inFlight.current = attempt;
    const ok = await attempt;
    inFlight.current = null;
    if (ok && version.current !== v) return saveNow();
    return ok;
  };

  const reportSaveFailure = (problem: Problem) => {
    // Passing troubles are retried on their own; a refusal (400, 403) waits for the next edit.
    const passing = problem.status === 0 || problem.status === 429 || problem.status >= 500;
    setSave({ kind: "failed", text: describeProblem(problem), retrying: passing });
    if (passing) {
      const wait = problem.retryAfter !== null ? problem.retryAfter * 1000 : RETRY_DELAY_MS;
      saveTimer.current = setTimeout(() => void saveNow(), wait);
    }
  };

  const edit = (change: Partial<Fields>) => {
    setFields((f) => ({ ...f, ...change }));
    latest.current = { ...latest.current, ...change };
    version.current++;
    setFormError(null);
    if (send.kind === "failed") setSend({ kind: "idle" });
    clearTimeout(saveTimer.current);
    saveTimer.current = setTimeout(() => void saveNow(), SAVE_DELAY_MS);
  };

  useEffect(
    () => () => {
      // Leaving: keep what was typed, or drop a draft that was never written in.
      clearTimeout(saveTimer.current);
      clearInterval(sendTimer.current);
      if (finished.current) return;
      finished.current = true;
      if (isBlank(latest.current, filesRef.current.count) && !filesRef.current.uploading) {
        void call(() => api.DELETE("/api/v1/drafts/{id}", { params: { path: { id: draft.id } } }));
      } else if (savedVersion.current !== version.current) {
        void saveNow();
      }
    },
    [],
  );

  const leave = (sentCopy: string | null) => {
    const origin = composeOrigin();
    if (origin !== null) {
      navigate(parseRoute(origin), true);
      return;
    }
    if (sentCopy === null) {
      navigate({ name: "inbox" }, true);
      return;
    }
    void call(() => api.GET("/api/v1/messages/{id}", { params: { path: { id: sentCopy } } })).then((outcome) =>
      navigate(outcome.ok ? { name: "discussion", id: outcome.data.discussion_id } : { name: "inbox" }, true),
    );
  };

  const startSend = async () => {
    const f = latest.current;
    const bad = [f.to, f.cc, f.bcc].flatMap((v) => parseRecipients(v).invalid);
    if (bad.length > 0) {
      setFormError(t("compose.notAddresses", { list: bad.join(", ") }));
      return;
    }
    const count = [f.to, f.cc, f.bcc].reduce((n, v) => n + parseRecipients(v).addresses.length, 0);
    if (count === 0) {
      setFormError(t("compose.noRecipients"));
      toField.current?.querySelector("input")?.focus();
      return;
    }
    setFormError(null);
    setSend({ kind: "preparing" });
    // Files still uploading are waited for: "Send" means with them.
    let justFailed = false;
    while (uploads.current.size > 0) {
      const outcomes = await Promise.all([...uploads.current]);
      justFailed ||= outcomes.some((o) => !o.ok);
    }
    if (justFailed || filesRef.current.failed > 0) {
      setSend({ kind: "idle" });
      setFormError(t("compose.failedFiles"));
      return;
    }
    if (!(await saveNow())) {
      setSend({ kind: "idle" });
      setFormError(t("compose.saveBeforeSend"));
      return;
    }
    const seconds = undoSeconds();
    if (seconds === 0) {
      void sendNow();
      return;
    }
    setSend({ kind: "countdown", remaining: seconds });
    let remaining = seconds;
    sendTimer.current = setInterval(() => {
      remaining--;
      if (remaining > 0) {
        setSend({ kind: "countdown", remaining });
      } else {
        clearInterval(sendTimer.current);
        void sendNow();
      }
    }, 1000);
    requestAnimationFrame(() => undoButton.current?.focus());
  };

  const undo = () => {
    clearInterval(sendTimer.current);
    setSend({ kind: "idle" });
    flash(t("compose.undone"), 4);
    requestAnimationFrame(() => sendButton.current?.focus());
  };

  const sendNow = async () => {
    setSend({ kind: "sending" });
    // After a countdown, Undo gives way to the busy Send button: focus that was on Undo (and
    // so fell to the page) follows it; focus the user took elsewhere stays there.
    requestAnimationFrame(() => {
      if (document.activeElement === null || document.activeElement === document.body) sendButton.current?.focus();
    });
    const outcome = await call(() => api.POST("/api/v1/drafts/{id}/send", { params: { path: { id: draft.id } } }));
    if (outcome.ok) {
      finished.current = true;
      flash(t("compose.sent"));
      leave(outcome.data.message_id ?? null);
      return;
    }
    setSend({ kind: "failed", text: sendFailure(outcome.problem) });
    requestAnimationFrame(() => sendButton.current?.focus());
  };

  const discard = async () => {
    if (!window.confirm(t("compose.discardConfirm"))) return;
    clearTimeout(saveTimer.current);
    finished.current = true;
    const outcome = await call(() => api.DELETE("/api/v1/drafts/{id}", { params: { path: { id: draft.id } } }));
    if (!outcome.ok && outcome.problem.status !== 404) {
      finished.current = false;
      setFormError(describeProblem(outcome.problem));
      return;
    }
    flash(t("compose.discarded"), 4);
    leave(null);
  };

  const title = t(kind === "reply" ? "compose.title.reply" : kind === "forward" ? "compose.title.forward" : "compose.title.new");
  return (
    <section class="compose" aria-labelledby="compose-title">
      <h1 id="compose-title">{title}</h1>
      <form
        class="compose-form"
        aria-label={t("compose.form")}
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (!busy) void startSend();
        }}
      >
        <fieldset class="compose-fields" disabled={busy}>
          <div class="field">
            <label for="compose-from">{t("compose.from")}</label>
            <select id="compose-from" value={fields.from} onChange={(e) => edit({ from: e.currentTarget.value })}>
              {identities.map((a) => (
                <option key={a} value={a}>
                  {a}
                </option>
              ))}
            </select>
          </div>
          <div ref={toField}>
            <RecipientField id="compose-to" label={t("compose.to")} value={fields.to} onInput={(to) => edit({ to })} />
          </div>
          <RecipientField id="compose-cc" label={t("compose.cc")} value={fields.cc} onInput={(cc) => edit({ cc })} />
          <RecipientField id="compose-bcc" label={t("compose.bcc")} value={fields.bcc} onInput={(bcc) => edit({ bcc })} />
          <div class="field">
            <label for="compose-subject">{t("compose.subject")}</label>
            <input
              id="compose-subject"
              type="text"
              maxLength={998}
              value={fields.subject}
              onInput={(e) => edit({ subject: e.currentTarget.value })}
            />
          </div>
          <div class="field">
            <label for="compose-body">{t("compose.body")}</label>
            <textarea
              ref={bodyField}
              id="compose-body"
              rows={14}
              value={fields.body}
              aria-keyshortcuts="Control+Enter"
              onInput={(e) => edit({ body: e.currentTarget.value })}
              onKeyDown={(e) => {
                // Ctrl+Enter (⌘+Enter on a Mac) sends, as in most mail clients.
                if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
                  e.preventDefault();
                  if (!busy) void startSend();
                }
              }}
            />
          </div>
        </fieldset>
        {kind === "forward" && <p class="hint">{t("compose.forwardNote")}</p>}
        <Attachments
          draftId={draft.id}
          initial={attached}
          disabled={busy}
          onChange={(state) => {
            filesRef.current = state;
            setFiles(state);
          }}
          onUpload={(done) => {
            uploads.current.add(done);
            void done.finally(() => uploads.current.delete(done));
          }}
        />
        {formError !== null && (
          <p class="error" role="alert">
            {formError}
          </p>
        )}
        {send.kind === "failed" && (
          <p class="error" role="alert">
            {send.text}
          </p>
        )}
        <div class="compose-actions">
          {send.kind === "countdown" ? (
            <>
              <p role="status" class="countdown">
                {t("compose.sendingIn", { n: send.remaining })}
              </p>
              <button ref={undoButton} type="button" class="button" onClick={undo}>
                {t("compose.undo")}
              </button>
            </>
          ) : (
            <BusyButton buttonRef={sendButton} type="submit" class="button" busy={send.kind === "sending" || send.kind === "preparing"}>
              {send.kind === "sending" ? t("compose.sending") : send.kind === "preparing" ? t("compose.preparing") : t("compose.send")}
            </BusyButton>
          )}
          <button type="button" class="button button--secondary" disabled={busy} onClick={() => void discard()}>
            {t("compose.discard")}
          </button>
          <SaveStatus state={save} />
        </div>
      </form>
    </section>
  );
}

function SaveStatus({ state }: { state: SaveState }) {
  // One polite region for every autosave state, so each change is announced once.
  let text = "";
  if (state.kind === "saving") text = t("compose.saving");
  else if (state.kind === "saved") text = t("compose.saved");
  else if (state.kind === "failed") text = t(state.retrying ? "compose.saveFailedRetrying" : "compose.saveFailed", { reason: state.text });
  return (
    <p role="status" class={state.kind === "failed" ? "save-status save-status--failed" : "save-status muted"}>
      {text}
    </p>
  );
}

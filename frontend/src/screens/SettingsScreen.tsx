import "../writing.css";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { deleteAccount } from "../api/account";
import { saveExport, type ExportPart } from "../api/export";
import { importProgress, importStatus, uploadMailbox, type ImportStatus } from "../api/imports";
import { changePassword } from "../api/password";
import { call, describeProblem } from "../api/problem";
import { session } from "../api/session";
import { formatDate, formatNumber, t, tn, type MessageKey } from "../i18n";
import { FormStatus } from "../components/FormStatus";
import { deviceName } from "../settings/device";
import { setTheme, useTheme, type ThemeChoice } from "../theme";
import { BusyButton } from "../components/BusyButton";

type SessionView = Schemas["SessionView"];

/** Sessions and devices, theme, password. */
export function SettingsScreen() {
  const [sessions, setSessions] = useState<SessionView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState("");

  const loadSessions = async () => {
    const outcome = await call(() => api.GET("/api/v1/auth/sessions"));
    if (outcome.ok) {
      // This device first, then the most recently used.
      const sorted = [...outcome.data].sort(
        (a, b) => Number(b.current) - Number(a.current) || b.last_seen_at.localeCompare(a.last_seen_at),
      );
      setSessions(sorted);
      setError(null);
    } else {
      setError(describeProblem(outcome.problem));
    }
  };

  useEffect(() => {
    void loadSessions();
  }, []);

  const revoke = async (s: SessionView) => {
    const outcome = await call(() => api.DELETE("/api/v1/auth/sessions/{id}", { params: { path: { id: s.id } } }));
    if (!outcome.ok && outcome.problem.status !== 404) {
      setError(describeProblem(outcome.problem));
      return;
    }
    setStatus(t("settings.revoked", { device: deviceName(s) }));
    await loadSessions();
    document.getElementById("sessions-title")?.focus();
  };

  return (
    <>
      <h1>{t("nav.settings")}</h1>
      <section class="settings-section" aria-labelledby="sessions-title">
        <h2 id="sessions-title" tabIndex={-1}>
          {t("settings.sessions")}
        </h2>
        <FormStatus status={status} error={error} />
        {sessions === null ? (
          <p class="muted">{t("app.loading")}</p>
        ) : (
          <ul class="sessions" aria-label={t("settings.sessions")}>
            {sessions.map((s) => (
              <li key={s.id} class="session">
                <div class="session-main">
                  <p class="session-device">
                    {deviceName(s)}
                    {s.current && <strong class="badge">{t("settings.thisDevice")}</strong>}
                  </p>
                  <dl class="session-facts">
                    <dt>{t("settings.signedIn")}</dt>
                    <dd>
                      <time dateTime={s.created_at}>{formatDate(s.created_at)}</time>
                    </dd>
                    <dt>{t("settings.lastSeen")}</dt>
                    <dd>
                      <time dateTime={s.last_seen_at}>{formatDate(s.last_seen_at)}</time>
                    </dd>
                    <dt>{t("settings.address")}</dt>
                    <dd>{s.client_address}</dd>
                    {s.user_agent !== undefined && s.user_agent !== "" && (
                      <>
                        <dt>{t("settings.userAgent")}</dt>
                        <dd class="user-agent">{s.user_agent}</dd>
                      </>
                    )}
                  </dl>
                </div>
                {!s.current && (
                  <button
                    type="button"
                    class="button button--secondary"
                    aria-describedby={`session-${s.id}`}
                    onClick={() => void revoke(s)}
                  >
                    {t("settings.revoke")}
                  </button>
                )}
                <span id={`session-${s.id}`} class="visually-hidden">
                  {t("settings.sessionOf", { device: deviceName(s), date: formatDate(s.last_seen_at) })}
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <RemoteTrustSection />
      <ThemeSection />
      <PasswordSection onChanged={() => void loadSessions()} />
      <DataSection />
    </>
  );
}

type RemoteTrust = Schemas["RemoteTrustView"];

/** The senders and domains whose authenticated mail shows its remote content at once. */
function RemoteTrustSection() {
  const [entries, setEntries] = useState<RemoteTrust[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState("");

  const load = async () => {
    const outcome = await call(() => api.GET("/api/v1/remote/trusted"));
    if (outcome.ok) {
      setEntries(outcome.data);
      setError(null);
    } else {
      setError(describeProblem(outcome.problem));
    }
  };

  useEffect(() => {
    void load();
  }, []);

  const remove = async (entry: RemoteTrust) => {
    const outcome = await call(() =>
      entry.kind === "sender"
        ? api.DELETE("/api/v1/remote/trusted/senders/{address}", { params: { path: { address: entry.value } } })
        : api.DELETE("/api/v1/remote/trusted/domains/{domain}", { params: { path: { domain: entry.value } } }),
    );
    if (!outcome.ok && outcome.problem.status !== 404) {
      setError(describeProblem(outcome.problem));
      return;
    }
    setStatus(t("settings.remote.removed", { value: entry.value }));
    await load();
    document.getElementById("remote-title")?.focus();
  };

  return (
    <section class="settings-section" aria-labelledby="remote-title">
      <h2 id="remote-title" tabIndex={-1}>
        {t("settings.remote")}
      </h2>
      <p class="muted">{t("settings.remote.intro")}</p>
      <FormStatus status={status} error={error} />
      {entries === null ? (
        <p class="muted">{t("app.loading")}</p>
      ) : entries.length === 0 ? (
        <p>{t("settings.remote.none")}</p>
      ) : (
        <ul class="sessions" aria-label={t("settings.remote")}>
          {entries.map((e) => (
            <li key={`${e.kind}:${e.value}`} class="session">
              <p class="session-main">
                {t(e.kind === "sender" ? "settings.remote.sender" : "settings.remote.domain", { value: e.value })}
              </p>
              <button
                type="button"
                class="button button--secondary"
                aria-label={t("settings.remote.removeLabel", { value: e.value })}
                onClick={() => void remove(e)}
              >
                {t("settings.remote.remove")}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const THEMES: readonly { value: ThemeChoice; label: MessageKey }[] = [
  { value: "system", label: "settings.theme.system" },
  { value: "light", label: "settings.theme.light" },
  { value: "dark", label: "settings.theme.dark" },
];

/** Users own their data: the whole mailbox, downloadable at any time, and mail brought in. */
function DataSection() {
  const [busy, setBusy] = useState<ExportPart | null>(null);
  const [message, setMessage] = useState("");
  const [failed, setFailed] = useState(false);
  const save = async (part: ExportPart) => {
    setBusy(part);
    setFailed(false);
    setMessage(t("settings.data.preparing"));
    try {
      await saveExport(part);
      setMessage(t("settings.data.saved"));
    } catch (e) {
      setFailed(true);
      setMessage(t("settings.data.failed", { reason: e instanceof Error ? e.message : String(e) }));
    } finally {
      setBusy(null);
    }
  };
  return (
    <section class="settings-section" aria-labelledby="data-title">
      <h2 id="data-title">{t("settings.data")}</h2>
      <p class="muted">{t("settings.data.intro")}</p>
      <div class="button-row">
        <BusyButton type="button" class="button button--secondary" busy={busy !== null} onClick={() => void save("mailbox")}>
          {t("settings.data.mailbox")}
        </BusyButton>
        <BusyButton type="button" class="button button--secondary" busy={busy !== null} onClick={() => void save("metadata")}>
          {t("settings.data.metadata")}
        </BusyButton>
      </div>
      <FormStatus status={failed ? "" : message} error={failed ? message : null} look="muted" />
      <ImportMailbox />
      <DeleteAccount />
    </section>
  );
}

/** How often a running import's status is asked for. */
const IMPORT_POLL_MS = 1000;

/** Where the import form stands. */
type ImportPhase =
  | { readonly kind: "idle" }
  | { readonly kind: "uploading"; readonly fraction: number }
  | { readonly kind: "importing"; readonly status: ImportStatus }
  | { readonly kind: "ended"; readonly status: ImportStatus }
  | { readonly kind: "failed"; readonly reason: string };

/**
 * Brings mail in: an mbox (and, from a Palisade export, its metadata) is uploaded, then its
 * import is followed until the report.
 */
function ImportMailbox() {
  const [mailbox, setMailbox] = useState<File | null>(null);
  const [metadata, setMetadata] = useState<File | null>(null);
  const [phase, setPhase] = useState<ImportPhase>({ kind: "idle" });
  // Polling stops when the screen goes away.
  const alive = useRef(true);
  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);

  const follow = async (status: ImportStatus) => {
    let current = status;
    while (alive.current && current.state === "running") {
      setPhase({ kind: "importing", status: current });
      await new Promise((resolve) => setTimeout(resolve, IMPORT_POLL_MS));
      if (!alive.current) return;
      const outcome = await importStatus(current.id);
      if (!outcome.ok) {
        setPhase({ kind: "failed", reason: describeProblem(outcome.problem) });
        return;
      }
      current = outcome.data;
    }
    if (alive.current) setPhase({ kind: "ended", status: current });
  };

  const start = async (e: Event) => {
    e.preventDefault();
    if (mailbox === null) {
      setPhase({ kind: "failed", reason: t("settings.import.choose") });
      return;
    }
    setPhase({ kind: "uploading", fraction: 0 });
    const sent = uploadMailbox(mailbox, metadata, (fraction) => {
      if (alive.current) setPhase({ kind: "uploading", fraction });
    });
    const outcome = await sent.done;
    if (!alive.current) return;
    if (!outcome.ok) {
      setPhase({ kind: "failed", reason: describeProblem(outcome.problem) });
      return;
    }
    await follow(outcome.data);
  };

  const busy = phase.kind === "uploading" || phase.kind === "importing";
  const percent = (fraction: number) => Math.floor(fraction * 100);
  let progress: number | null = null;
  let message = "";
  if (phase.kind === "uploading") {
    progress = phase.fraction;
    message = t("settings.import.uploading", { percent: percent(phase.fraction) });
  } else if (phase.kind === "importing") {
    progress = importProgress(phase.status);
    message = tn("settings.import.running", phase.status.messages, { percent: percent(progress) });
  } else if (phase.kind === "ended" && phase.status.state === "done") {
    message = t("settings.import.done");
  }
  const failure =
    phase.kind === "failed" ? phase.reason : phase.kind === "ended" && phase.status.state === "failed" ? (phase.status.error ?? "") : null;

  return (
    <section class="settings-subsection" aria-labelledby="import-title">
      <h3 id="import-title">{t("settings.import")}</h3>
      <p class="muted">{t("settings.import.intro")}</p>
      <form class="import-form" noValidate onSubmit={(e) => void start(e)}>
        <div class="field">
          <label for="import-mailbox">{t("settings.import.mailbox")}</label>
          <input
            id="import-mailbox"
            type="file"
            accept=".mbox,application/mbox,text/plain"
            disabled={busy}
            onChange={(e) => setMailbox(e.currentTarget.files?.[0] ?? null)}
          />
        </div>
        <div class="field">
          <label for="import-metadata">{t("settings.import.metadata")}</label>
          <input
            id="import-metadata"
            type="file"
            accept=".json,application/json"
            aria-describedby="import-metadata-hint"
            disabled={busy}
            onChange={(e) => setMetadata(e.currentTarget.files?.[0] ?? null)}
          />
          <p class="hint" id="import-metadata-hint">
            {t("settings.import.metadataHint")}
          </p>
        </div>
        <BusyButton type="submit" class="button button--secondary" busy={busy}>
          {t("settings.import.start")}
        </BusyButton>
      </form>
      {progress !== null && <progress class="import-progress" max={1} value={progress} aria-label={t("settings.import.progress")} />}
      <FormStatus
        status={message}
        error={failure === null ? null : t("settings.import.failed", { reason: failure })}
        look="muted"
      />
      {phase.kind === "ended" && <ImportReportView status={phase.status} />}
    </section>
  );
}

/** What an import did: its counts, and the messages that were not imported as they were. */
function ImportReportView({ status }: { status: ImportStatus }) {
  const counts: [MessageKey, number][] = [
    ["settings.import.messages", status.messages],
    ["settings.import.stored", status.stored],
  ];
  if (status.with_metadata) counts.push(["settings.import.restored", status.restored]);
  counts.push(["settings.import.unparsable", status.unparsable], ["settings.import.tooLarge", status.too_large]);
  const problems = status.unparsable + status.too_large;
  return (
    <section class="import-report" aria-labelledby="import-report-title">
      <h4 id="import-report-title">{t("settings.import.report")}</h4>
      <dl class="import-counts">
        {counts.map(([label, n]) => (
          <div key={label}>
            <dt>{t(label)}</dt>
            <dd>{formatNumber(n)}</dd>
          </div>
        ))}
      </dl>
      {status.problems.length > 0 && (
        <>
          <h5 id="import-problems-title">{t("settings.import.problems")}</h5>
          <ul class="import-problems" aria-labelledby="import-problems-title">
            {status.problems.map((p, i) => (
              <li key={i}>
                <span class="import-origin">{p.origin}</span>: {p.problem}
              </li>
            ))}
          </ul>
          {problems > status.problems.length && (
            <p class="muted">{t("settings.import.firstOnly", { count: formatNumber(status.problems.length) })}</p>
          )}
        </>
      )}
    </section>
  );
}

/**
 * Deleting the account: the password, and a box saying the user understands it cannot be
 * undone, before anything is sent. Success signs this tab out; the server has already ended
 * every session.
 */
function DeleteAccount() {
  const [password, setPassword] = useState("");
  const [understood, setUnderstood] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (password === "" || !understood) {
      setProblem(t("settings.delete.required"));
      return;
    }
    setBusy(true);
    const outcome = await deleteAccount(password);
    setBusy(false);
    if (!outcome.ok) {
      setProblem(outcome.problem.status === 403 ? t("settings.delete.wrongPassword") : describeProblem(outcome.problem));
      return;
    }
    session.signOut("account.deleted");
  };

  return (
    <section class="settings-subsection" aria-labelledby="delete-title">
      <h3 id="delete-title">{t("settings.delete")}</h3>
      <p class="muted" id="delete-intro">
        {t("settings.delete.intro")}
      </p>
      <form noValidate aria-labelledby="delete-title" onSubmit={(e) => void submit(e)}>
        <div class="field">
          <label for="delete-password">{t("settings.delete.password")}</label>
          <input
            id="delete-password"
            type="password"
            autoComplete="current-password"
            aria-describedby="delete-intro"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label class="check">
            <input type="checkbox" checked={understood} onChange={(e) => setUnderstood(e.currentTarget.checked)} />
            {t("settings.delete.understood")}
          </label>
        </div>
        <FormStatus error={problem} />
        <BusyButton type="submit" class="button button--danger" busy={busy}>
          {t("settings.delete.submit")}
        </BusyButton>
      </form>
    </section>
  );
}

function ThemeSection() {
  const theme = useTheme();
  return (
    <section class="settings-section" aria-labelledby="theme-title">
      <h2 id="theme-title">{t("settings.theme")}</h2>
      <fieldset class="radios">
        <legend class="visually-hidden">{t("settings.theme")}</legend>
        {THEMES.map(({ value, label }) => (
          <label key={value} class="check">
            <input type="radio" name="theme" value={value} checked={theme === value} onChange={() => setTheme(value)} />
            {t(label)}
          </label>
        ))}
      </fieldset>
    </section>
  );
}

function PasswordSection({ onChanged }: { onChanged: () => void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setDone(false);
    if (current === "" || next === "") {
      setProblem(t("settings.passwordRequired"));
      return;
    }
    if (next.length < 8) {
      setProblem(t("settings.newPasswordHint"));
      return;
    }
    setBusy(true);
    const outcome = await changePassword(current, next);
    setBusy(false);
    if (!outcome.ok) {
      setProblem(outcome.problem.status === 403 ? t("settings.wrongPassword") : describeProblem(outcome.problem));
      return;
    }
    setProblem(null);
    setCurrent("");
    setNext("");
    setDone(true);
    onChanged();
  };

  return (
    <section class="settings-section" aria-labelledby="password-title">
      <h2 id="password-title">{t("settings.password")}</h2>
      <form class="password-form" noValidate onSubmit={(e) => void submit(e)}>
        <div class="field">
          <label for="current-password">{t("settings.currentPassword")}</label>
          <input
            id="current-password"
            type="password"
            autoComplete="current-password"
            value={current}
            onInput={(e) => setCurrent(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="new-password">{t("settings.newPassword")}</label>
          <input
            id="new-password"
            type="password"
            autoComplete="new-password"
            minLength={8}
            maxLength={1024}
            aria-describedby="new-password-hint"
            value={next}
            onInput={(e) => setNext(e.currentTarget.value)}
          />
          <p class="hint" id="new-password-hint">
            {t("settings.newPasswordHint")}
          </p>
        </div>
        <FormStatus status={done ? t("settings.passwordChanged") : ""} error={problem} look="notice" />
        <BusyButton type="submit" class="button" busy={busy}>
          {t("settings.changePassword")}
        </BusyButton>
      </form>
    </section>
  );
}

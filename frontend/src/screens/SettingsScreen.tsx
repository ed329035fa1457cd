import "../writing.css";
import { useEffect, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { deleteAccount } from "../api/account";
import { saveExport, type ExportPart } from "../api/export";
import { changePassword } from "../api/password";
import { call, describeProblem } from "../api/problem";
import { session } from "../api/session";
import { formatDate, t, type MessageKey } from "../i18n";
import { deviceName } from "../settings/device";
import { setTheme, useTheme, type ThemeChoice } from "../theme";

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
      <p role="status" class="visually-hidden">
        {status}
      </p>
      <section class="settings-section" aria-labelledby="sessions-title">
        <h2 id="sessions-title" tabIndex={-1}>
          {t("settings.sessions")}
        </h2>
        {error !== null && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
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
      <p role="status" class="visually-hidden">
        {status}
      </p>
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
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

/** Users own their data: the whole mailbox, downloadable at any time. */
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
        <button type="button" class="button button--secondary" disabled={busy !== null} onClick={() => void save("mailbox")}>
          {t("settings.data.mailbox")}
        </button>
        <button type="button" class="button button--secondary" disabled={busy !== null} onClick={() => void save("metadata")}>
          {t("settings.data.metadata")}
        </button>
      </div>
      <p role={failed ? "alert" : "status"} class={failed ? "error" : "muted"}>
        {message}
      </p>
      <DeleteAccount />
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
    <form class="password-form" noValidate aria-labelledby="delete-title" onSubmit={(e) => void submit(e)}>
      <h3 id="delete-title">{t("settings.delete")}</h3>
      <p class="muted" id="delete-intro">
        {t("settings.delete.intro")}
      </p>
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
      <label class="check">
        <input type="checkbox" checked={understood} onChange={(e) => setUnderstood(e.currentTarget.checked)} />
        {t("settings.delete.understood")}
      </label>
      {problem !== null && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
      <button type="submit" class="button" disabled={busy}>
        {t("settings.delete.submit")}
      </button>
    </form>
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
        {problem !== null && (
          <p class="error" role="alert">
            {problem}
          </p>
        )}
        {done && (
          <p class="notice" role="status">
            {t("settings.passwordChanged")}
          </p>
        )}
        <button type="submit" class="button" disabled={busy}>
          {t("settings.changePassword")}
        </button>
      </form>
    </section>
  );
}

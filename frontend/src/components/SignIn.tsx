import { useEffect, useRef, useState } from "preact/hooks";
import type { TargetedSubmitEvent } from "preact";
import { api, errorMessage } from "../api/client";
import { session } from "../api/session";
import { t, type MessageKey } from "../i18n";
import { BusyButton } from "./BusyButton";

export function SignIn({ notice }: { notice: MessageKey | null }) {
  const [address, setAddress] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const addressField = useRef<HTMLInputElement>(null);

  useEffect(() => addressField.current?.focus(), []);

  const submit = async (event: TargetedSubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (busy) return;
    if (address.trim() === "" || password === "") {
      setError(t("signIn.required"));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const { data, error: body, response } = await api.POST("/api/v1/auth/login", {
        body: { address: address.trim(), password },
      });
      if (data) {
        setPassword("");
        session.signIn(data.token);
        return;
      }
      const retry = response.headers.get("Retry-After");
      if (response.status === 429 && retry !== null) {
        setError(t("signIn.retryAfter", { seconds: retry }));
      } else {
        const message = errorMessage(body);
        setError(
          message !== null
            ? t("signIn.failed", { message })
            : t("error.unexpected", { status: response.status }),
        );
      }
    } catch {
      setError(t("error.network"));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="signin">
      <form class="signin-form" onSubmit={(e) => void submit(e)} noValidate>
        <h1>{t("signIn.title")}</h1>
        <div id="signin-status" class="status-region">
          {/* Live regions exist before their text so screen readers announce the change. */}
          <p role="status" aria-live="polite" class={notice ? "notice" : "visually-empty"}>
            {notice !== null && error === null ? t(notice) : ""}
          </p>
          <p role="alert" aria-live="assertive" class={error ? "error" : "visually-empty"}>
            {error ?? ""}
          </p>
        </div>
        <label for="signin-address">{t("signIn.address")}</label>
        <input
          ref={addressField}
          id="signin-address"
          name="username"
          type="text"
          inputMode="email"
          autoComplete="username"
          autoCapitalize="none"
          aria-describedby="signin-status"
          spellcheck={false}
          required
          maxLength={320}
          value={address}
          onInput={(e) => setAddress(e.currentTarget.value)}
          aria-invalid={error !== null}
        />
        <label for="signin-password">{t("signIn.password")}</label>
        <input
          id="signin-password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          maxLength={1024}
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
          aria-invalid={error !== null}
        />
        <BusyButton type="submit" class="button" busy={busy} aria-busy={busy}>
          {busy ? t("signIn.submitting") : t("signIn.submit")}
        </BusyButton>
      </form>
    </main>
  );
}

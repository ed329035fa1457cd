import { useEffect, useState } from "preact/hooks";
import { api } from "./api/client";
import { session, type SessionState } from "./api/session";
import { DiscussionList } from "./components/DiscussionList";
import { SignIn } from "./components/SignIn";
import { t } from "./i18n";

export function App() {
  const [state, setState] = useState<SessionState>(session.state);
  useEffect(() => session.subscribe(setState), []);

  if (state.token === null) return <SignIn notice={state.notice} />;
  return <Mailbox />;
}

function Mailbox() {
  const [address, setAddress] = useState<string | null>(null);
  const [ownAddresses, setOwnAddresses] = useState<readonly string[]>([]);

  useEffect(() => {
    let live = true;
    void api.GET("/api/v1/me").then(({ data }) => {
      if (!live || !data) return;
      setAddress(data.addresses[0] ?? data.name);
      setOwnAddresses(data.addresses.map((a) => a.toLowerCase()));
    }, () => undefined);
    return () => {
      live = false;
    };
  }, []);

  const signOut = async () => {
    try {
      await api.POST("/api/v1/auth/logout");
    } catch {
      // Offline: the token is forgotten here anyway, and expires on the server.
    }
    session.signOut("account.signedOut");
  };

  return (
    <>
      <a class="skip-link" href="#main">
        {t("app.skipToContent")}
      </a>
      <header class="app-header">
        <p class="brand">{t("app.name")}</p>
        <div class="account">
          {address !== null && <span class="account-address">{t("account.signedInAs", { address })}</span>}
          <button type="button" class="button button--secondary" onClick={() => void signOut()}>
            {t("account.signOut")}
          </button>
        </div>
      </header>
      <div class="layout">
        <nav class="sidebar" aria-label={t("nav.label")}>
          <ul>
            <li>
              <a href="#main" aria-current="page">
                {t("nav.inbox")}
              </a>
            </li>
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          <h1>{t("list.title")}</h1>
          <DiscussionList ownAddresses={ownAddresses} />
        </main>
      </div>
    </>
  );
}

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "./api/client";
import { session, type SessionState } from "./api/session";
import { LiveUpdates } from "./components/LiveUpdates";
import { SearchBox } from "./components/SearchBox";
import { Shortcuts } from "./components/Shortcuts";
import { SignIn } from "./components/SignIn";
import { t, type MessageKey } from "./i18n";
import { MeContext, nobody, type Me } from "./me";
import { navigate, routeHash, useRoute, type Route } from "./router";
import { ComposeScreen } from "./screens/ComposeScreen";
import { ContactsScreen } from "./screens/ContactsScreen";
import { DiscussionScreen } from "./screens/DiscussionScreen";
import { ListScreen } from "./screens/ListScreen";
import { SearchScreen } from "./screens/SearchScreen";
import { SettingsScreen } from "./screens/SettingsScreen";
import { TagsScreen } from "./screens/TagsScreen";

export function App() {
  const [state, setState] = useState<SessionState>(session.state);
  useEffect(() => {
    const unsubscribe = session.subscribe(setState);
    // The session may have ended between the first render and this subscription (a screen's
    // first request can already have come back 401): catch up, or that change is missed.
    setState(session.state);
    return unsubscribe;
  }, []);

  if (state.token === null) return <SignIn notice={state.notice} />;
  return <Shell />;
}

/** The signed-in frame: header, mailbox navigation and the current screen. */
function Shell() {
  const [me, setMe] = useState<Me>(nobody);
  const route = useRoute();

  useEffect(() => {
    let live = true;
    void api.GET("/api/v1/me").then(({ data }) => {
      if (!live || !data) return;
      setMe({ name: data.name, addresses: data.addresses, ownAddresses: data.addresses.map((a) => a.toLowerCase()) });
    }, () => undefined);
    return () => {
      live = false;
    };
  }, []);

  // A new screen moves focus to its content, so keyboard and screen-reader users start there.
  useEffect(() => {
    document.getElementById("main")?.focus({ preventScroll: true });
  }, [routeHash(route)]);

  const signOut = async () => {
    try {
      await api.POST("/api/v1/auth/logout");
    } catch {
      // Offline: the token is forgotten here anyway, and expires on the server.
    }
    session.signOut("account.signedOut");
  };

  const address = me.addresses[0] ?? me.name;
  return (
    <MeContext.Provider value={me}>
      <a class="skip-link" href="#main" onClick={skipToMain}>
        {t("app.skipToContent")}
      </a>
      <header class="app-header">
        <p class="brand">{t("app.name")}</p>
        <SearchBox />
        <div class="account">
          {address !== "" && <span class="account-address">{t("account.signedInAs", { address })}</span>}
          <button type="button" class="button button--secondary" onClick={() => void signOut()}>
            {t("account.signOut")}
          </button>
        </div>
      </header>
      <div class="layout">
        <nav class="sidebar" aria-label={t("nav.label")}>
          <button type="button" class="button compose-button" onClick={() => navigate({ name: "compose", draft: null })}>
            {t("nav.compose")}
          </button>
          <ul>
            <NavLink route={{ name: "inbox" }} current={route} label="nav.inbox" />
            <NavLink route={{ name: "trash" }} current={route} label="nav.trash" />
            <NavLink route={{ name: "tags" }} current={route} label="nav.tags" />
            <NavLink route={{ name: "contacts" }} current={route} label="nav.contacts" />
            <NavLink route={{ name: "settings" }} current={route} label="nav.settings" />
          </ul>
        </nav>
        <main id="main" tabIndex={-1}>
          <Screen route={route} />
        </main>
      </div>
      <Shortcuts />
      <LiveUpdates />
    </MeContext.Provider>
  );
}

function skipToMain(e: Event) {
  // The hash is the router's; moving focus must not change the screen.
  e.preventDefault();
  document.getElementById("main")?.focus();
}

function NavLink({ route, current, label }: { route: Route; current: Route; label: MessageKey }) {
  const active = route.name === current.name || (route.name === "inbox" && current.name === "discussion");
  return (
    <li>
      <a href={routeHash(route)} aria-current={active ? "page" : undefined}>
        {t(label)}
      </a>
    </li>
  );
}

function Screen({ route }: { route: Route }): ComponentChildren {
  switch (route.name) {
    case "inbox":
    case "trash":
      return <ListScreen key={route.name} folder={route.name} />;
    case "discussion":
      return <DiscussionScreen key={route.id} id={route.id} />;
    case "compose":
      return <ComposeScreen key={route.draft ?? "new"} draft={route.draft} />;
    case "search":
      return <SearchScreen params={route.params} />;
    case "tags":
      return <TagsScreen />;
    case "contacts":
      return <ContactsScreen />;
    case "settings":
      return <SettingsScreen />;
  }
}

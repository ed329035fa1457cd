import { useEffect, useState } from "preact/hooks";
import { t, type MessageKey } from "../i18n";
import { listenForShortcuts, SHORTCUTS, useShortcuts, type ShortcutAction } from "../keyboard";
import { navigate } from "../router";
import { Dialog } from "./Dialog";

const DESCRIPTIONS: Readonly<Record<ShortcutAction, MessageKey>> = {
  next: "shortcuts.next",
  previous: "shortcuts.previous",
  open: "shortcuts.open",
  reply: "shortcuts.reply",
  replyAll: "shortcuts.replyAll",
  forward: "shortcuts.forward",
  compose: "shortcuts.compose",
  search: "shortcuts.search",
  trash: "shortcuts.trash",
  help: "shortcuts.help",
};

/**
 * The app-wide shortcuts (compose, search, help) and the listener every screen's shortcuts go
 * through; `?` shows them all.
 */
export function Shortcuts() {
  const [help, setHelp] = useState(false);
  useEffect(() => listenForShortcuts(document), []);
  useShortcuts({
    compose: () => navigate({ name: "compose", draft: null }),
    search: () => {
      const box = document.getElementById("search-input");
      if (box instanceof HTMLInputElement) {
        box.focus();
        box.select();
      }
    },
    help: () => setHelp(true),
  });
  if (!help) return null;
  return (
    <Dialog title={t("shortcuts.title")} onClose={() => setHelp(false)}>
      <table class="shortcuts">
        <thead>
          <tr>
            <th scope="col">{t("shortcuts.keys")}</th>
            <th scope="col">{t("shortcuts.action")}</th>
          </tr>
        </thead>
        <tbody>
          {SHORTCUTS.map(([keys, action]) => (
            <tr key={action}>
              <td>
                {keys.map((k, i) => (
                  <span key={k}>
                    {i > 0 && ` ${t("shortcuts.or")} `}
                    <kbd>{k}</kbd>
                  </span>
                ))}
              </td>
              <td>{t(DESCRIPTIONS[action])}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">{t("shortcuts.typing")}</p>
    </Dialog>
  );
}

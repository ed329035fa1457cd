import { useEffect } from "preact/hooks";
import { api } from "../api/client";
import { announceMailChange, openEventStream } from "../api/events";
import { session } from "../api/session";
import { announce, useAnnouncement } from "../announce";
import { t } from "../i18n";
import { displayParticipants } from "./participants";

/** New messages looked up at once for their announcement. */
const MAX_LOOKUPS = 3;

/**
 * Keeps the event stream open while signed in: each new mail refreshes the open views and is
 * announced ("New mail from …: …") in the app's polite live region, which this renders.
 */
export function LiveUpdates() {
  const text = useAnnouncement();

  useEffect(() => {
    // A burst of mail (a list delivering, an import) must not become a burst of requests and
    // announcements: past a few lookups in flight, new mail only refreshes the views.
    let describing = 0;
    const stream = openEventStream({
      token: () => session.token,
      onUnauthorized: (token) => session.ended(token),
      onOpen: () => {
        // Mail may have arrived while the stream was down, or, the first time, between the
        // views' first load and the subscription: without this the list would miss it.
        announceMailChange({ messageId: null, discussionId: null });
      },
      onEvent: (event) => {
        if (event.type !== "new_mail") return;
        const id = event.message_id ?? null;
        if (id === null || describing >= MAX_LOOKUPS) {
          announceMailChange({ messageId: id, discussionId: null });
          return;
        }
        describing += 1;
        void describe(id).then((found) => {
          describing -= 1;
          announceMailChange({ messageId: id, discussionId: found?.discussionId ?? null });
          if (found) announce(t("live.newMail", { sender: found.sender, subject: found.subject }));
        });
      },
    });
    return () => stream.close();
  }, []);

  return (
    <div id="live-region" class="visually-hidden" role="status" aria-live="polite" aria-atomic="true">
      {text}
    </div>
  );
}

/** Who sent a new message and about what, for the announcement. */
async function describe(id: string): Promise<{ sender: string; subject: string; discussionId: string } | null> {
  try {
    const { data } = await api.GET("/api/v1/messages/{id}", { params: { path: { id } } });
    if (!data) return null;
    const from = data.participants.filter((p) => p.role === "from");
    const sender = displayParticipants(from, [])[0] ?? t("message.unknownSender");
    return { sender, subject: data.subject?.trim() || t("list.noSubject"), discussionId: data.discussion_id };
  } catch {
    return null;
  }
}

import { useEffect, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { failure, reasonOf } from "../api/discussions";
import { saveMessageFile, type MessageFile } from "../api/messageFiles";
import { formatDate, formatNumber, t } from "../i18n";
import { formatSize } from "../messageParts";
import { countTrackers } from "../remote";
import { contentIdKey, isInlineImageType } from "../sanitize";
import { Dialog } from "./Dialog";
import { MessageFrame } from "./MessageFrame";
import { MessageParts } from "./MessageParts";
import { PrivacyBadge } from "./PrivacyBadge";
import { TagChips } from "./TagChips";
import { displayParticipants } from "./participants";
import { BusyButton } from "./BusyButton";

type Summary = Schemas["MessageSummaryView"];
type Message = Schemas["MessageView"];

/** What starting a reply or a forward needs to know. */
export type DraftKind = "reply" | "replyAll" | "forward";

/** Largest embedded image turned into a data: URL for the frame. */
const INLINE_IMAGE_LIMIT = 5 * 1024 * 1024;

/** Longest source shown in the dialog; beyond it, the page would freeze for little use. */
const SOURCE_LIMIT = 2_000_000;

interface MessageCardProps {
  readonly summary: Summary;
  /** The full message, or null while it loads. */
  readonly message: Message | null;
  /** Why the full message could not be loaded. */
  readonly error: string | null;
  readonly ownAddresses: readonly string[];
  readonly onDraft: (messageId: string, kind: DraftKind) => void;
  /** Asks for this message again with its remote content. */
  readonly onLoadRemote: (messageId: string) => Promise<void>;
}

/** What an "always load remote content" setting covers. */
type TrustKind = Schemas["TrustKindView"];

/** One message of a discussion: who, when, privacy, body, attachments, and what to do with it. */
export function MessageCard({ summary, message, error, ownAddresses, onDraft, onLoadRemote }: MessageCardProps) {
  const [source, setSource] = useState<{ text: string | null; error: string | null } | null>(null);
  const [remoteBusy, setRemoteBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const id = summary.id;
  const fromId = `m-${id}-from`;
  const senders = message?.participants.filter((p) => p.role === "from") ?? [];
  const from = senders[0] ?? summary.from;
  const label = (p: { name?: string; address?: string } | undefined) => p?.name?.trim() || p?.address?.trim() || "";
  // Several senders are all named, so none of them can pass unseen (a spoofing risk).
  const several = senders.length > 1;
  const sender = (several ? senders.map(label).filter((l) => l !== "").join(", ") : label(from)) || t("message.unknownSender");
  const everySender = several
    ? senders.map((p) => (p.name?.trim() && p.address ? `${p.name.trim()} <${p.address}>` : label(p))).join(", ")
    : "";
  const multipleFrom = message?.privacy.multiple_from === true || several;
  const people = (role: string) =>
    displayParticipants(
      (message?.participants ?? []).filter((p) => p.role === role),
      [],
    ).join(", ");
  const to = people("to");
  const cc = people("cc");

  const viewSource = async (e: Event) => {
    e.preventDefault();
    setSource({ text: null, error: null });
    try {
      const { data, error: body, response } = await api.GET("/api/v1/messages/{id}/raw", {
        params: { path: { id } },
        parseAs: "text",
      });
      if (data === undefined) throw failure(body, response.status);
      setSource({ text: data.length > SOURCE_LIMIT ? `${data.slice(0, SOURCE_LIMIT)}\n…` : data, error: null });
    } catch (err) {
      setSource({ text: null, error: reasonOf(err) });
    }
  };

  const loadRemote = async () => {
    setRemoteBusy(true);
    setActionError(null);
    try {
      await onLoadRemote(id);
    } catch (err) {
      setActionError(t("message.failed", { message: reasonOf(err) }));
    } finally {
      setRemoteBusy(false);
    }
  };

  /** Always loads remote content from this sender or its domain, then shows this message's. */
  const alwaysLoad = async (kind: TrustKind, value: string) => {
    setRemoteBusy(true);
    setActionError(null);
    try {
      const { error: problem } =
        kind === "sender"
          ? await api.POST("/api/v1/remote/trusted/senders", { body: { address: value } })
          : await api.POST("/api/v1/remote/trusted/domains", { body: { domain: value } });
      if (problem !== undefined) throw new Error(problem.message);
      await onLoadRemote(id);
    } catch (err) {
      setActionError(t("message.failed", { message: reasonOf(err) }));
    } finally {
      setRemoteBusy(false);
    }
  };

  const download = async (file: MessageFile) => {
    setActionError(null);
    try {
      await saveMessageFile(id, file);
    } catch (err) {
      setActionError(t("message.failed", { message: reasonOf(err) }));
    }
  };

  return (
    <article class="message" aria-labelledby={fromId} tabIndex={-1} data-message-id={id}>
      <header class="message-head">
        <div class="message-who">
          <h2 id={fromId} class="message-from">
            {sender}
          </h2>
          {!several && from?.address && from.name && <span class="message-address">{from.address}</span>}
        </div>
        <time class="message-date" dateTime={summary.date}>
          {formatDate(summary.date)}
        </time>
        {several && <p class="message-recipients">{t("message.from", { names: everySender })}</p>}
        {multipleFrom && (
          <p class="notice notice--warning message-warning" role="note">
            {t("message.multipleFrom")}
          </p>
        )}
        {to !== "" && <p class="message-recipients">{t("message.to", { names: to })}</p>}
        {cc !== "" && <p class="message-recipients">{t("message.cc", { names: cc })}</p>}
        {message && (
          <div class="message-facts">
            <PrivacyBadge score={message.privacy.privacy_index} facts={message.privacy} />
            <TagChips tags={message.tags} label={t("message.tags")} />
          </div>
        )}
      </header>

      {actionError !== null && (
        <p class="error" role="alert">
          {actionError}
        </p>
      )}
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {message === null && error === null && <p class="muted">{t("app.loading")}</p>}
      {message !== null && (
        <MessageBody
          message={message}
          ownAddresses={ownAddresses}
          remoteBusy={remoteBusy}
          onLoadRemote={() => void loadRemote()}
          onAlwaysLoad={(kind, value) => void alwaysLoad(kind, value)}
        />
      )}

      {message !== null && message.attachments.length > 0 && (
        <ul class="attachments" aria-label={t("message.attachments")}>
          {message.attachments.map((a) => {
            const name = a.file_name?.trim() || t("message.attachmentName", { index: a.index });
            return (
              <li key={a.index}>
                <a
                  href={`/api/v1/messages/${id}/attachments/${a.index}`}
                  download={name}
                  onClick={(e) => {
                    e.preventDefault();
                    void download({ kind: "attachment", index: a.index, fileName: a.file_name?.trim() || `attachment-${a.index}` });
                  }}
                >
                  {t("message.attachment", { name, type: a.content_type, size: formatSize(a.size) })}
                </a>
              </li>
            );
          })}
        </ul>
      )}

      {message !== null && <MessageParts structure={message.structure} onDownload={(file) => void download(file)} />}

      <div class="message-actions">
        <button type="button" class="button button--secondary" onClick={() => onDraft(id, "reply")}>
          {t("message.reply")}
        </button>
        <button type="button" class="button button--secondary" onClick={() => onDraft(id, "replyAll")}>
          {t("message.replyAll")}
        </button>
        <button type="button" class="button button--secondary" onClick={() => onDraft(id, "forward")}>
          {t("message.forward")}
        </button>
        <a class="view-source" href={`/api/v1/messages/${id}/raw`} aria-haspopup="dialog" onClick={(e) => void viewSource(e)}>
          {t("message.viewSource")}
        </a>
      </div>

      {source !== null && (
        <Dialog title={t("message.source")} onClose={() => setSource(null)} class="dialog--wide">
          {source.error !== null && (
            <p class="error" role="alert">
              {source.error}
            </p>
          )}
          {source.text === null && source.error === null && <p class="muted">{t("app.loading")}</p>}
          {source.text !== null && (
            // Focusable, so keyboard users can scroll a long source.
            // eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex
            <pre class="source" tabIndex={0}>
              {source.text}
            </pre>
          )}
        </Dialog>
      )}
    </article>
  );
}

interface MessageBodyProps {
  readonly message: Message;
  readonly ownAddresses: readonly string[];
  readonly remoteBusy: boolean;
  readonly onLoadRemote: () => void;
  readonly onAlwaysLoad: (kind: TrustKind, value: string) => void;
}

/** The body: HTML in its sandbox (with the blocked-content bar), or plain text. */
function MessageBody({ message, remoteBusy, onLoadRemote, onAlwaysLoad }: MessageBodyProps) {
  const blocked = message.blocked.length;
  // Only a sender the message proves can be trusted: the server applies nothing else.
  const sender = message.authenticated_sender;
  const domain = sender?.slice(sender.lastIndexOf("@") + 1);
  const html = message.html;
  const inline = useInlineImages(message);
  return (
    <div class="message-body">
      {message.parse_error !== undefined && (
        <p class="notice">{t("message.parseError", { reason: message.parse_error })}</p>
      )}
      {blocked > 0 && !message.remote_content_allowed && (
        <div class="remote-bar" role="status">
          <span>
            {t("message.remoteBlocked", {
              count: formatNumber(blocked),
              trackers: formatNumber(countTrackers(message.blocked)),
            })}
          </span>
          <BusyButton type="button" class="button button--secondary" busy={remoteBusy} onClick={onLoadRemote}>
            {t("message.loadRemote")}
          </BusyButton>
          {sender !== undefined && domain !== undefined && (
            <>
              <BusyButton
                type="button"
                class="button button--secondary"
                busy={remoteBusy}
                onClick={() => onAlwaysLoad("sender", sender)}
              >
                {t("message.alwaysLoadSender", { sender })}
              </BusyButton>
              <BusyButton
                type="button"
                class="button button--secondary"
                busy={remoteBusy}
                onClick={() => onAlwaysLoad("domain", domain)}
              >
                {t("message.alwaysLoadDomain", { domain })}
              </BusyButton>
            </>
          )}
        </div>
      )}
      {message.remote_content_allowed && (
        <p class="muted remote-shown">
          {message.remote_content_trusted === "sender" && sender !== undefined
            ? t("message.remoteTrustedSender", { sender })
            : message.remote_content_trusted === "domain" && domain !== undefined
              ? t("message.remoteTrustedDomain", { domain })
              : t("message.remoteShown")}
        </p>
      )}
      {message.tracking_params_removed > 0 && (
        <p class="muted remote-shown">
          {t("message.linksCleaned", { count: formatNumber(message.tracking_params_removed) })}
        </p>
      )}
      {html !== undefined && html.trim() !== "" ? (
        inline === null ? (
          <p class="muted">{t("app.loading")}</p>
        ) : (
          <MessageFrame html={html} allowRemote={message.remote_content_allowed} inline={inline} />
        )
      ) : message.text !== undefined && message.text.trim() !== "" ? (
        <div class="message-text">{message.text}</div>
      ) : (
        <p class="muted">{t("message.empty")}</p>
      )}
      {message.body_truncated && <p class="notice">{t("message.truncated")}</p>}
    </div>
  );
}

/**
 * The images a message embeds as its own parts (`cid:` in its HTML), fetched with the session's
 * token and turned into data: URLs, since the frame may load nothing else. Null while loading.
 */
function useInlineImages(message: Message): ReadonlyMap<string, string> | null {
  const parts = message.attachments.filter(
    (a) => a.content_id !== undefined && isInlineImageType(a.content_type) && a.size <= INLINE_IMAGE_LIMIT,
  );
  // Only for HTML that refers to parts at all, and a bounded number of them.
  const referenced = /cid:/i.test(message.html ?? "") ? parts.slice(0, 20) : [];
  const [images, setImages] = useState<ReadonlyMap<string, string> | null>(referenced.length === 0 ? new Map() : null);
  useEffect(() => {
    if (referenced.length === 0) return;
    let live = true;
    void Promise.all(
      referenced.map(async (a) => {
        try {
          const { data } = await api.GET("/api/v1/messages/{id}/attachments/{index}", {
            params: { path: { id: message.id, index: a.index } },
            parseAs: "blob",
          });
          if (data === undefined) return null;
          const url = await dataUrl(new Blob([data], { type: a.content_type.toLowerCase() }));
          return [contentIdKey(a.content_id ?? ""), url] as const;
        } catch {
          return null; // The image stays missing; the rest of the message shows.
        }
      }),
    ).then((pairs) => {
      if (live) setImages(new Map(pairs.filter((p): p is readonly [string, string] => p !== null)));
    });
    return () => {
      live = false;
    };
  }, [message.id]);
  return images;
}

function dataUrl(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => (typeof reader.result === "string" ? resolve(reader.result) : reject(new Error("unreadable")));
    reader.onerror = () => reject(reader.error ?? new Error("unreadable"));
    reader.readAsDataURL(blob);
  });
}

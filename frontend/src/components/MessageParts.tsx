import { useState } from "preact/hooks";
import type { Schemas } from "../api/client";
import type { MessageFile } from "../api/messageFiles";
import { t, type MessageKey } from "../i18n";
import {
  isContainer,
  partFacts,
  partFileName,
  partTags,
  partTree,
  wantsPartsPanel,
  type PartNode,
  type PartTag,
} from "../messageParts";

type Part = Schemas["MimePartView"];

const TAG_LABELS: Readonly<Record<PartTag, MessageKey>> = {
  shown: "parts.shown",
  attachment: "parts.attachment",
  hidden: "parts.hidden",
};

interface MessagePartsProps {
  readonly structure: readonly Part[];
  readonly onDownload: (file: MessageFile) => void;
}

/**
 * "Message parts": the message's MIME tree behind a disclosure, closed at first, each part with
 * its type, size, disposition, name and charset, what Palisade did with it, and a download.
 */
export function MessageParts({ structure, onDownload }: MessagePartsProps) {
  const [open, setOpen] = useState(false);
  if (!wantsPartsPanel(structure)) return null;
  return (
    <details class="message-parts" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{t("parts.summary", { count: structure.length })}</summary>
      {/* Rendered once opened: a long tree costs nothing while the panel is closed. */}
      {open && <PartList nodes={partTree(structure)} label={t("parts.title")} onDownload={onDownload} />}
    </details>
  );
}

function PartList({ nodes, label, onDownload }: { nodes: readonly PartNode[]; label?: string; onDownload: (file: MessageFile) => void }) {
  return (
    <ul class="part-list" aria-label={label}>
      {nodes.map(({ part, children }) => (
        <li key={part.index}>
          <PartRow part={part} onDownload={onDownload} />
          {children.length > 0 && <PartList nodes={children} onDownload={onDownload} />}
        </li>
      ))}
    </ul>
  );
}

function PartRow({ part, onDownload }: { part: Part; onDownload: (file: MessageFile) => void }) {
  const facts = partFacts(part);
  const name = part.file_name?.trim();
  return (
    <div class="part">
      <span class="part-type">{part.content_type}</span>
      {name && <span class="part-name">{name}</span>}
      {facts.length > 0 && <span class="part-facts">{facts.join(" · ")}</span>}
      {partTags(part).map((tag) => (
        <span key={tag} class={`part-tag part-tag--${tag}`}>
          {t(TAG_LABELS[tag])}
        </span>
      ))}
      {!isContainer(part) && (
        <button
          type="button"
          class="button button--secondary part-download"
          aria-label={t("parts.downloadLabel", {
            name: name || t("parts.unnamed", { index: part.index, type: part.content_type }),
          })}
          onClick={() => onDownload({ kind: "part", index: part.index, fileName: partFileName(part) })}
        >
          {t("parts.download")}
        </button>
      )}
    </div>
  );
}

import { useEffect, useRef, useState } from "preact/hooks";
import { suggestRecipients, type RecipientSuggestion } from "../api/contacts";
import { completePiece, currentPiece, displayRecipient, parseRecipients } from "../compose/recipients";
import { t } from "../i18n";

/** A recipient field (To, Cc, Bcc) that suggests contacts for the address being typed. */
export function RecipientField(props: {
  id: string;
  label: string;
  value: string;
  disabled?: boolean;
  onInput: (value: string) => void;
}) {
  const { id, label, value, disabled = false, onInput } = props;
  const [suggestions, setSuggestions] = useState<RecipientSuggestion[]>([]);
  const [active, setActive] = useState(-1);
  const [typed, setTyped] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const listId = `${id}-suggestions`;
  const invalid = parseRecipients(value).invalid;
  // A piece still being typed is not yet wrong: only the finished ones are flagged.
  const finishedInvalid = invalid.filter((piece) => piece !== currentPiece(value) || !typed);

  useEffect(() => {
    if (!typed) return;
    const piece = currentPiece(value);
    if (piece.length < 1) {
      setSuggestions([]);
      return;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => {
      void suggestRecipients(piece, 8, controller.signal).then((found) => {
        if (controller.signal.aborted) return;
        const present = new Set(parseRecipients(value).addresses.map((a) => a.toLowerCase()));
        setSuggestions(found.filter((s) => !present.has(s.address.toLowerCase())));
        setActive(-1);
      });
    }, 150);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [value, typed]);

  const open = suggestions.length > 0 && typed;
  const choose = (s: RecipientSuggestion) => {
    onInput(completePiece(value, displayRecipient(s.name, s.address)));
    setSuggestions([]);
    setActive(-1);
    input.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (!open) return;
    if (e.key === "ArrowDown") {
      e.preventDefault();
      setActive((a) => (a + 1) % suggestions.length);
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      setActive((a) => (a <= 0 ? suggestions.length - 1 : a - 1));
    } else if ((e.key === "Enter" || e.key === "Tab") && active >= 0) {
      const s = suggestions[active];
      if (s) {
        e.preventDefault();
        choose(s);
      }
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      setSuggestions([]);
    }
  };

  const errorId = `${id}-error`;
  return (
    <div class="field recipient-field">
      <label for={id}>{label}</label>
      <div class="combo">
        <input
          ref={input}
          id={id}
          type="text"
          inputMode="email"
          autoComplete="off"
          spellcheck={false}
          value={value}
          disabled={disabled}
          aria-autocomplete="list"
          aria-controls={open ? listId : undefined}
          aria-activedescendant={open && active >= 0 ? `${listId}-${active}` : undefined}
          aria-invalid={finishedInvalid.length > 0 ? "true" : undefined}
          aria-describedby={finishedInvalid.length > 0 ? errorId : undefined}
          onInput={(e) => {
            setTyped(true);
            onInput(e.currentTarget.value);
          }}
          onKeyDown={onKeyDown}
          onBlur={() => {
            setTyped(false);
            setSuggestions([]);
          }}
        />
        {open && (
          <div class="suggestions" role="listbox" id={listId} aria-label={t("compose.suggestions")}>
            {suggestions.map((s, i) => (
              <div
                key={`${s.contact_id}-${s.address}`}
                id={`${listId}-${i}`}
                role="option"
                tabIndex={-1}
                aria-selected={i === active}
                class={i === active ? "suggestion suggestion--active" : "suggestion"}
                // mousedown, not click: the field keeps focus, so the list is not closed first.
                onMouseDown={(e) => {
                  e.preventDefault();
                  choose(s);
                }}
              >
                {optionLabel(s)}
              </div>
            ))}
          </div>
        )}
      </div>
      {finishedInvalid.length > 0 && (
        <p class="field-error" id={errorId}>
          {t("compose.notAddresses", { list: finishedInvalid.join(", ") })}
        </p>
      )}
    </div>
  );
}

/** What an option shows: "Name <address>", unquoted (the field gets a quoted name if needed). */
function optionLabel(s: RecipientSuggestion): string {
  const name = (s.name ?? "").trim();
  return name === "" ? s.address : `${name} <${s.address}>`;
}

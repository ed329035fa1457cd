import type { ButtonHTMLAttributes, ComponentChildren, Ref } from "preact";

type Props = Omit<ButtonHTMLAttributes<HTMLButtonElement>, "disabled" | "onClick" | "children"> & {
  /** Whether the button's action is running: it then does nothing when pressed. */
  readonly busy: boolean;
  readonly onClick?: ((event: MouseEvent) => void) | undefined;
  readonly children?: ComponentChildren;
  /** The underlying button, for a screen that moves focus to it. */
  readonly buttonRef?: Ref<HTMLButtonElement> | undefined;
};

/**
 * A button that stays focusable while its action runs. A `disabled` button that has focus
 * loses it to the page, so a keyboard or screen-reader user who pressed it is sent back to
 * the top; this one is marked `aria-disabled` instead and ignores presses, and for a submit
 * button the implicit submission (Enter in a field) too, since that is a click on it.
 */
export function BusyButton({ busy, onClick, children, buttonRef, ...rest }: Props) {
  return (
    <button
      {...rest}
      ref={buttonRef ?? null}
      aria-disabled={busy}
      onClick={(event) => {
        if (busy) {
          event.preventDefault();
          return;
        }
        onClick?.(event);
      }}
    >
      {children}
    </button>
  );
}

/** How a status is shown besides being announced: boxed, in muted text, or not at all. */
export type StatusLook = "notice" | "muted" | "hidden";

/**
 * What a form or section last did, for every user. The status region is always in the page:
 * screen readers announce a change inside a live region, not a region that appears together
 * with its text. A failure is an alert, announced at once.
 */
export function FormStatus({
  status = "",
  error = null,
  look = "hidden",
}: {
  readonly status?: string;
  readonly error?: string | null;
  readonly look?: StatusLook;
}) {
  return (
    <>
      <p role="status" class={look === "hidden" || status === "" ? "visually-hidden" : look}>
        {status}
      </p>
      {error !== null && error !== "" && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </>
  );
}

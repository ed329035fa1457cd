import { useEffect, useState } from "preact/hooks";

/**
 * Submitting the search the screen already shows asks again (recent mail may have been indexed
 * since): the URL does not change then, so the results screen is told directly.
 */
const EVENT = "palisade:search-again";

/** Runs the current search again. */
export function searchAgain(): void {
  window.dispatchEvent(new Event(EVENT));
}

/** A number that grows each time the same search is submitted again; key the results with it. */
export function useSearchAgain(): number {
  const [round, setRound] = useState(0);
  useEffect(() => {
    const onAgain = () => setRound((r) => r + 1);
    window.addEventListener(EVENT, onAgain);
    return () => window.removeEventListener(EVENT, onAgain);
  }, []);
  return round;
}

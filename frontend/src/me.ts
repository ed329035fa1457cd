import { createContext } from "preact";
import { useContext } from "preact/hooks";

/** Who is signed in, as every screen needs it (own addresses are hidden from participant lists). */
export interface Me {
  /** Login name. */
  readonly name: string;
  /** Addresses the user receives at and may send from, as the server spells them. */
  readonly addresses: readonly string[];
  /** The same, lowercased, for comparisons. */
  readonly ownAddresses: readonly string[];
}

/** Before `/me` answers: no addresses yet. */
export const nobody: Me = { name: "", addresses: [], ownAddresses: [] };

/** Provided by the app shell once signed in. */
export const MeContext = createContext<Me>(nobody);

/** The signed-in user. */
export function useMe(): Me {
  return useContext(MeContext);
}

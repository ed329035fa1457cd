import type { Schemas } from "../api/client";

type Participant = Schemas["ParticipantView"];

/**
 * The people to show for a discussion: each person once (by address), senders first, the
 * signed-in user's own addresses left out unless nobody else is in it.
 */
export function displayParticipants(
  participants: readonly Participant[],
  own: readonly string[],
): string[] {
  const order = ["from", "sender", "reply_to", "to", "cc", "bcc"];
  const rank = (role: string) => {
    const i = order.indexOf(role);
    return i === -1 ? order.length : i;
  };
  const sorted = [...participants].sort((a, b) => rank(a.role) - rank(b.role));
  const seen = new Set<string>();
  const others: string[] = [];
  const mine: string[] = [];
  for (const p of sorted) {
    const key = (p.address ?? p.name ?? "").toLowerCase();
    const label = p.name?.trim() || p.address?.trim() || "";
    if (key === "" || label === "" || seen.has(key)) continue;
    seen.add(key);
    (own.includes(key) ? mine : others).push(label);
  }
  return others.length > 0 ? others : mine;
}

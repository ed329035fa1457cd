/**
 * What the blocked-content bar says: how many remote resources the server kept out of a message,
 * and how many of them are trackers.
 *
 * The server marks each blocked resource: a tracker when the message sized the image to at most
 * 3×3 pixels or hid it (the classic open-tracking pixel), or when its host is on the maintained
 * tracker list the server is deployed with. The client only counts.
 */
import type { Schemas } from "./api/client";

type Blocked = Schemas["BlockedContent"];

/** How many of the `blocked` resources the server marked as trackers. */
export function countTrackers(blocked: readonly Blocked[]): number {
  return blocked.filter((b) => b.tracker).length;
}

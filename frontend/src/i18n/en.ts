/**
 * English: the reference catalog. Every UI string lives here; other catalogs must have the same
 * keys (the type of `fr` enforces it, and a unit test checks it again at run time).
 * `{name}` is replaced by `t(key, { name })`. Keys ending in `.one` / `.other` are plural forms,
 * chosen by `tn`.
 */
export const en = {
  "app.name": "Palisade",
  "app.skipToContent": "Skip to content",
  "app.loading": "Loading…",

  "nav.label": "Mailboxes",
  "nav.inbox": "Inbox",
  "nav.trash": "Trash",
  "nav.tags": "Tags",
  "nav.contacts": "Contacts",
  "nav.settings": "Settings",
  "nav.compose": "Compose",

  "search.title": "Search",
  "search.label": "Search mail",
  "search.placeholder": "Search mail",

  "account.signedInAs": "Signed in as {address}",
  "account.signOut": "Sign out",
  "account.signedOut": "You are signed out.",

  "signIn.title": "Sign in to Palisade",
  "signIn.address": "Email address or user name",
  "signIn.password": "Password",
  "signIn.submit": "Sign in",
  "signIn.submitting": "Signing in…",
  "signIn.failed": "Sign-in failed: {message}",
  "signIn.retryAfter": "Too many attempts. Try again in {seconds} seconds.",
  "signIn.required": "Enter your address and password.",

  "session.expired": "Your session ended. Please sign in again.",

  "error.network": "Palisade cannot be reached. Check your connection and try again.",
  "error.unexpected": "Something went wrong ({status}). Try again.",

  "list.title": "Inbox",
  "list.label": "Discussions, newest first",
  "list.empty": "No discussions yet.",
  "list.loadMore": "Load more",
  "list.loadingMore": "Loading more…",
  "list.loaded.one": "{count} discussion shown.",
  "list.loaded.other": "{count} discussions shown.",
  "list.noSubject": "(no subject)",
  "list.unknownParticipant": "(unknown)",
  "list.unread.one": "{count} unread",
  "list.unread.other": "{count} unread",
  "list.messages.one": "{count} message",
  "list.messages.other": "{count} messages",
  "list.lastActivity": "Last activity {date}",
  "list.participantsMore": "{names} and {count} more",

  "privacy.badge": "Privacy: {label} ({score}/100)",
  "privacy.low": "Low",
  "privacy.fair": "Fair",
  "privacy.good": "Good",
  "privacy.strong": "Strong",
} as const;

export type MessageKey = keyof typeof en;
export type Catalog = Readonly<Record<MessageKey, string>>;

import type { Catalog } from "./en";

/** French: the second catalog, proving the catalog works. Same keys as `en`. */
export const fr: Catalog = {
  "app.name": "Palisade",
  "app.skipToContent": "Aller au contenu",
  "app.loading": "Chargement…",

  "nav.label": "Boîtes aux lettres",
  "nav.inbox": "Boîte de réception",
  "nav.trash": "Corbeille",
  "nav.tags": "Étiquettes",
  "nav.contacts": "Contacts",
  "nav.settings": "Réglages",
  "nav.compose": "Écrire",

  "search.title": "Recherche",
  "search.label": "Rechercher dans le courrier",
  "search.placeholder": "Rechercher",

  "account.signedInAs": "Connecté en tant que {address}",
  "account.signOut": "Se déconnecter",
  "account.signedOut": "Vous êtes déconnecté.",

  "signIn.title": "Connexion à Palisade",
  "signIn.address": "Adresse électronique ou nom d’utilisateur",
  "signIn.password": "Mot de passe",
  "signIn.submit": "Se connecter",
  "signIn.submitting": "Connexion…",
  "signIn.failed": "Échec de la connexion\u00a0: {message}",
  "signIn.retryAfter": "Trop de tentatives. Réessayez dans {seconds} secondes.",
  "signIn.required": "Saisissez votre adresse et votre mot de passe.",

  "session.expired": "Votre session a pris fin. Veuillez vous reconnecter.",

  "error.network": "Palisade est injoignable. Vérifiez votre connexion et réessayez.",
  "error.unexpected": "Une erreur est survenue ({status}). Réessayez.",

  "list.title": "Boîte de réception",
  "list.label": "Discussions, les plus récentes d’abord",
  "list.empty": "Aucune discussion pour l’instant.",
  "list.loadMore": "Afficher plus",
  "list.loadingMore": "Chargement…",
  "list.loaded.one": "{count} discussion affichée.",
  "list.loaded.other": "{count} discussions affichées.",
  "list.noSubject": "(sans objet)",
  "list.unknownParticipant": "(inconnu)",
  "list.unread.one": "{count} non lu",
  "list.unread.other": "{count} non lus",
  "list.messages.one": "{count} message",
  "list.messages.other": "{count} messages",
  "list.lastActivity": "Dernière activité {date}",
  "list.participantsMore": "{names} et {count} autres",

  "privacy.badge": "Confidentialité\u00a0: {label} ({score}/100)",
  "privacy.low": "Faible",
  "privacy.fair": "Moyenne",
  "privacy.good": "Bonne",
  "privacy.strong": "Forte",
};

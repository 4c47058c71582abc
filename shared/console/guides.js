// Per server: the README's setup steps with the backend's webhook URL filled in, the
// Tautulli JSON template, and what each server does not tell (the known limitations)
// with the options they call for. Keep in step with README.md "Setting up each media
// server" and "What each server does not tell".

import { el, copy } from "./dom.js";

// Tautulli's JSON body for every trigger (template from WatchState's guide, MIT).
export const TAUTULLI_TEMPLATE = `{"event": "tautulli.{action}",
 "Account": {"id": "{user_id}", "thumb": "{user_thumb}", "title": "{username}"},
 "Server": {"title": "{server_name}", "uuid": "{server_machine_id}", "version": "{server_version}"},
 "Player": {"local": "{stream_local}", "publicAddress": "{ip_address}", "title": "{player}", "uuid": "{machine_id}"},
 "Metadata": {"librarySectionType": null, "ratingKey": "{rating_key}", "key": null,
  "parentRatingKey": "{parent_rating_key}", "grandparentRatingKey": "{grandparent_rating_key}",
  "guid": "{guid}", "parentGuid": null, "grandparentGuid": null, "grandparentSlug": null,
  "type": "{media_type}", "title": "{episode_name}", "grandparentKey": null, "parentKey": null,
  "librarySectionTitle": "{library_name}", "librarySectionID": "{section_id}", "librarySectionKey": null,
  "grandparentTitle": "{show_name}", "parentTitle": "{season_name}", "contentRating": "{content_rating}",
  "summary": "{summary}", "index": "{episode_num}", "parentIndex": "{season_num}",
  "audienceRating": "{audience_rating}", "viewOffset": "{view_offset}", "skipCount": null,
  "lastViewedAt": "{last_viewed_date}", "year": "{show_year}", "thumb": "{poster_thumb}",
  "art": "{art}", "parentThumb": "{parent_thumb}", "grandparentThumb": "{grandparent_thumb}",
  "grandparentArt": null, "grandparentTheme": null, "duration": "{duration_ms}",
  "originallyAvailableAt": "{air_date}", "addedAt": "{added_date}", "updatedAt": "{updated_date}",
  "audienceRatingImage": null, "userRating": "{user_rating}",
  "Guids": {"imdb": "{imdb_id}", "tvdb": "{thetvdb_id}", "tmdb": "{themoviedb_id}", "tvmaze": "{tvmaze_id}"},
  "file": "{file}", "file_size": "{file_size_bytes}"}}`;

const u = (url) => el("code", { class: "url" }, url ?? "(the URL appears once the backend is saved)");

function steps(title, ...items) {
  return [el("h4", {}, title), el("ol", {}, items.map((i) => el("li", {}, i)))];
}

function limits(...items) {
  return [el("h4", {}, "What this server does not tell"), el("ul", { class: "limits" }, items.map((i) => el("li", {}, i)))];
}

const opt = (name) => el("strong", {}, name);

function plex(url, person) {
  return [
    ...steps(
      "Plex (needs Plex Pass)",
      "Plex Web → Settings → Webhooks → Add Webhook.",
      ["Paste this URL: ", u(url), "."],
      ["Plex sends every account's events to every webhook: turn on ", opt("Match user"), ` with ${person}'s Plex account id as the user id (the Deliveries page shows the ids seen), and add one backend per person (List accounts).`],
    ),
    ...steps(
      "Plex via Tautulli (no Plex Pass needed)",
      "Tautulli → Settings → Notification Agents → Add a new notification agent → Webhook.",
      ["Webhook URL: ", u(url), "; Webhook Method: PUT."],
      "Triggers: Playback Start, Playback Stop, Playback Pause, Playback Resume, Watched, Recently Added.",
      "Data → JSON Data: this template for every trigger (use the copy button).",
      ["Conditions: Username is ", person, ", or turn on ", opt("Match user"), "."],
    ),
    el("pre", { class: "template" }, TAUTULLI_TEMPLATE),
    el("button", { type: "button", class: "copy-template", onclick: async (e) => {
      await copy(TAUTULLI_TEMPLATE);
      e.target.textContent = "Tautulli template copied";
    } }, "Copy Tautulli template"),
    ...limits(
      ["Plex sends no webhook on “mark as unwatched”: turn on ", opt("Import"), " so an item unmarked on Plex is noticed and carried over."],
      ["Webhooks cover every account on the server: without ", opt("Match user"), " one person's viewing is stored as another's. Managed users share the owner's server id."],
      "library.new goes to the server owner only, and only when an account with Plex Pass has webhooks set up.",
      "Tautulli fills ids from the show for episodes; they are used as series ids. Its dates have no time of day, so the time received is used.",
    ),
  ];
}

function jellyfin(url, person) {
  return [
    ...steps(
      "Jellyfin",
      "Dashboard → Plugins → Catalog → install Webhook, restart Jellyfin.",
      "Dashboard → Plugins → Webhook → Add Generic Destination.",
      ["Webhook URL: ", u(url), "."],
      "Notification types: Item Added, Playback Start, Playback Progress, Playback Stop, User Data Saved.",
      "Turn on “Send All Properties (ignores template)”.",
      ["User Filter: ", person, " only (or turn on ", opt("Match user"), " with their user id)."],
    ),
    ...limits(
      "The webhook plugin sometimes omits the user (Item Added never has one): such events only add metadata.",
      ["Push and import need the person's user id (", opt("User id"), ") and an API key as the token."],
      "Progress arrives every few seconds: it is stored, but pushed only on pause and stop.",
    ),
  ];
}

function emby(url, person) {
  return [
    ...steps(
      "Emby (needs Emby Premiere)",
      "Settings → Notifications (Webhooks in 4.7/4.8) → Add Notification → Webhooks.",
      ["URL: ", u(url), "; request content type application/json (older versions send a form field, also fine)."],
      "Events: Playback, Mark played / unplayed, New media added.",
      ["Limit it to ", person, "'s user (or turn on ", opt("Match user"), ")."],
    ),
    ...limits(
      "library.new carries no user: it only adds metadata.",
      "Titles are localized and ProviderIds sometimes hold web addresses: matching uses ids only, and ignores those.",
      ["Push and import need the person's user id (", opt("User id"), ") and an API key as the token."],
    ),
  ];
}

// The guide for a backend type, with `url` (the webhook URL, or undefined before the
// backend exists) and the person's name filled in.
export function guide(kind, url, person) {
  const parts = { plex, jellyfin, emby }[kind] ?? (() => []);
  return parts(url, person);
}

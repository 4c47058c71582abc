// The accessible names of DESIGN 6 "The console" (labels, buttons, headings) that
// tests outside the project drive the page by. Kept here so the project checks
// itself without the design document: each browser's flow notes every name it
// looks up, and its last step fails listing any of these it never used.

export const DESIGN_NAMES = [
  // sign-in
  "Admin key", "Sign in", "Sign out",
  // people
  "Person", "Add person", "Name",
  // backends and the backend form
  "Backends", "Copy webhook URL", "Add backend",
  "Type", "URL", "Token", "Server id", "User id",
  "Match user", "Match server", "Import", "Export", "Save",
  // deliveries, tasks, items
  "Deliveries",
  "Tasks", "Run import", "Run export",
  "Items", "Find", "Mark played", "Mark unplayed",
];

// The names of `names` (DESIGN_NAMES by default) not in `used`, compared as DESIGN 6
// says: case insensitive.
export function unused(used, names = DESIGN_NAMES) {
  const seen = new Set([...used].map((n) => n.toLowerCase()));
  return names.filter((n) => !seen.has(n.toLowerCase()));
}

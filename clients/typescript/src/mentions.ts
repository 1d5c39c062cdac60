/**
 * Mentions: the server takes the ids of the members a message mentions and never parses text, so the client
 * that knows the member list turns `@name` into ids. Why here: every app would otherwise write the same
 * matching, and differ on where a name ends.
 */

/** Who can be mentioned: a member as the member list shows them. */
export interface Mentionable {
  _id: string;
  username: string;
}

/**
 * The ids of the members `text` mentions as `@username` (case-insensitive), in the order they first appear,
 * without repeats. Usernames may hold `.` and `-`, so `@bob.` at the end of a sentence is tried as `bob.`, then
 * `bob`. Names of non-members are ignored.
 */
export function mentionsIn(text: string, members: readonly Mentionable[]): string[] {
  const byName = new Map(members.map((m) => [m.username.toLowerCase(), m._id]));
  const ids: string[] = [];
  for (const match of text.matchAll(/(?:^|[^A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{1,32})/g)) {
    let name = (match[1] ?? '').toLowerCase();
    let id = byName.get(name);
    while (id === undefined && /[.-]$/.test(name)) {
      name = name.slice(0, -1);
      id = byName.get(name);
    }
    if (id !== undefined && !ids.includes(id)) ids.push(id);
  }
  return ids;
}

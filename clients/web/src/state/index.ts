/**
 * The app's state, in slices: `core` (endpoints, client, connection, change notification), `session`,
 * `conversations`, `messages`, `typing` and `friends`. Views read the slices and call their methods; every
 * rule of the protocol the UI depends on lives in the slice it concerns. `members` is an open group's member list, `security` the sessions and password.
 */

import { Conversations } from './conversations';
import { Core } from './core';
import { Friends } from './friends';
import { Members } from './members';
import { Security } from './security';
import { Messages } from './messages';
import { Session } from './session';
import { Typing } from './typing';

export type { Config } from './core';
export type { ConversationView, MessageState, Panel, PendingSend, TypingPeer } from './conversations';
export type { FriendAction } from './friends';
export { seqOf } from './core';

export class Store {
  readonly core = new Core();
  readonly typing: Typing;
  readonly conversations: Conversations;
  readonly messages: Messages;
  readonly friends = new Friends(this.core);
  readonly members = new Members(this.core);
  readonly security: Security;
  readonly session: Session;

  constructor() {
    // Typing reads the conversations' views lazily, so the two can be built in either order.
    this.typing = new Typing(this.core, () => this.conversations.all.values());
    this.conversations = new Conversations(this.core, this.typing);
    this.messages = new Messages(this.core, this.conversations, this.typing);
    this.session = new Session(this);
    this.security = new Security(this.core, () => this.session.endedHere());
  }
}

export const store = new Store();

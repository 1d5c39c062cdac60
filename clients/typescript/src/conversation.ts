/**
 * One conversation seen through a `ChatClient`: what an app does in it and what happens in it, in one object,
 * as stream-chat-js's `Channel` and matrix-js-sdk's `Room` offer.
 *
 * Why this module exists: most of an app's calls are about the conversation on screen, and the flat client
 * methods make every call site repeat its id and every listener filter events by it. `client.conversation(id)`
 * returns the same object for the same id; it holds no state of its own (the client keeps positions, joins and
 * presence), so it can never disagree with the flat methods, which stay.
 */

import type { UploadOptions, Uploadable } from './uploads.js';
import type { ChatClient, ChatClientEvents, SendOptions, SentMessage } from './client.js';
import type { Listener } from './emitter.js';
import { ChatError } from './errors.js';
import type { ConversationSummary, Member, Message, Page, ReadReceipt } from './protocol.js';
import type { HistoryQuery } from './rest.js';

/** The client's events that concern one conversation (each carries its `conversationId`). */
export type ConversationEvents = {
  [K in keyof ChatClientEvents as ChatClientEvents[K] extends { conversationId: string } ? K : never]: ChatClientEvents[K];
};

export class ChatConversation {
  constructor(
    private readonly client: ChatClient,
    readonly id: string,
  ) {}

  /** Listens to one of the client's events, for this conversation only. Returns the unsubscribe function. */
  on<K extends keyof ConversationEvents>(event: K, listener: Listener<ConversationEvents[K]>): () => void {
    return this.client.on(event, ((value: ConversationEvents[K]) => {
      if (value.conversationId === this.id) listener(value);
    }) as Listener<ChatClientEvents[K]>);
  }

  /** The conversation with the caller's unread count (`GET /conversations/:id`); starts following it. */
  get(): Promise<ConversationSummary> {
    return this.client.getConversation(this.id);
  }

  /** Sends a message (idempotent, queued while offline: see `ChatClient.sendMessage`). */
  send(content: string, options: SendOptions = {}): Promise<SentMessage> {
    return this.client.sendMessage(this.id, content, options);
  }

  /** Uploads a file and sends it as an image or file message (see `ChatClient.sendFile`). */
  sendFile(file: Uploadable, options: UploadOptions & { caption?: string; clientMessageId?: string } = {}): Promise<SentMessage> {
    return this.client.sendFile(this.id, file, options);
  }

  /** A page of history: newest first, or oldest first with `afterSeq`. */
  history(query: HistoryQuery = {}): Promise<Page<Message>> {
    return this.client.rest.history(this.id, query);
  }

  async editMessage(messageId: string, newContent: string): Promise<Message> {
    return this.client.editMessage(this.own(messageId), newContent);
  }

  async deleteMessage(messageId: string): Promise<{ messageId: string; conversationId: string }> {
    return this.client.deleteMessage(this.own(messageId));
  }

  async addReaction(messageId: string, emoji: string): Promise<boolean> {
    return this.client.addReaction(this.own(messageId), emoji);
  }

  async removeReaction(messageId: string, emoji: string): Promise<boolean> {
    return this.client.removeReaction(this.own(messageId), emoji);
  }

  /** Marks everything up to and including `seq` read (queued while offline; pointers never move back). */
  markReadUpTo(seq: number): Promise<ReadReceipt> {
    return this.client.markRead({ conversationId: this.id, lastMessageId: `${this.id}-${seq}` });
  }

  /** Marks exactly these displayed messages read. */
  async markRead(messageIds: string[]): Promise<ReadReceipt> {
    return this.client.markRead({ conversationId: this.id, messageIds: messageIds.map((id) => this.own(id)) });
  }

  /** How many members have read up to a message (any conversation size). */
  async readCount(messageId: string): Promise<{ messageId: string; readCount: number; memberCount: number }> {
    return this.client.rest.readCount(this.id, this.own(messageId));
  }

  /** Typing indicator; whether it was broadcast (repeats within 2 s are swallowed by the server). */
  typing(isTyping: boolean): Promise<boolean> {
    return this.client.typing(this.id, isTyping);
  }

  /** Receives this conversation's typing indicators on this connection, now and after every reconnect. */
  join(): Promise<void> {
    return this.client.joinConversation(this.id);
  }

  leave(): Promise<void> {
    return this.client.leaveConversation(this.id);
  }

  get joined(): boolean {
    return this.client.joinedConversations().includes(this.id);
  }

  /** A page of members with their roles (`GET /conversations/:id/members`). */
  members(query: { limit?: number; cursor?: string } = {}): Promise<Page<Member>> {
    return this.client.rest.members(this.id, query);
  }

  /** Highest seq delivered (or known to the app) here; null if the client does not follow this conversation. */
  get lastSeq(): number | null {
    return this.client.lastSeq(this.id);
  }

  /** Fetches what is missing after this conversation's position now (also done after every reconnect). */
  catchUp(): Promise<void> {
    return this.client.catchUp(this.id);
  }

  /**
   * Message ids name their conversation (`<conversationId>-<seq>`): one from elsewhere is a caller's bug,
   * refused (as a rejected promise) before anything is sent.
   */
  private own(messageId: string): string {
    if (!messageId.startsWith(`${this.id}-`)) {
      throw new ChatError(404, 'not_found', `message ${messageId} is not in conversation ${this.id}`);
    }
    return messageId;
  }
}

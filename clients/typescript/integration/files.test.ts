/**
 * Attachments through the SDK against the deployed stack: `sendFile` uploads straight to the bucket with the
 * signed form (progress reported), the other member receives the message and reads the bytes, an image gains its
 * thumbnail, and refusals (type, size) come back as `ChatError`s before anything is uploaded.
 */

import { describe, expect, it } from 'vitest';

import { type Attachment, ChatError, type Message, type ServerEvents } from '../src/index.js';
import { connectSynced, eventData, participant, timeline, waitFor } from './stack.js';

/** A 2×2 PNG (a valid image the server thumbnails). */
const PNG = Uint8Array.from(
  atob(
    'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGM4IScHRAwQCgAfJgQRoo8irwAAAABJRU5ErkJggg==',
  ),
  (c) => c.charCodeAt(0),
);

async function pair() {
  const alice = await participant('alice');
  const bob = await participant('bob');
  const chat = await alice.client.createPrivate(bob.userId);
  await bob.client.getConversation(chat._id);
  await Promise.all([connectSynced(alice), connectSynced(bob)]);
  return { alice, bob, chat };
}

describe('attachments through the SDK', () => {
  it('sends a file and an image that the other member reads, the image with its thumbnail', async () => {
    const { alice, bob, chat } = await pair();
    const text = new TextEncoder().encode('minutes of the meeting\n');
    const progress: number[] = [];
    const sent = await alice.client
      .conversation(chat._id)
      .sendFile({ bytes: text, name: 'minutes.txt', type: 'text/plain' }, { caption: 'notes', onProgress: (p) => progress.push(p.loaded) });
    expect(sent.message).toMatchObject({ type: 'file', content: 'notes', attachment: { fileName: 'minutes.txt', size: text.length, status: 'ready' } });
    expect(progress.at(-1)).toBe(text.length);
    await waitFor(() => timeline(bob, chat._id).length === 1, 'bob receives the file');
    const received = timeline(bob, chat._id)[0]?.message as Message;
    const bytes = new Uint8Array(await (await fetch(received.attachment?.url as string)).arrayBuffer());
    expect(new TextDecoder().decode(bytes)).toBe('minutes of the meeting\n');

    const image = await alice.client.sendFile(chat._id, new Blob([PNG], { type: 'image/png' }), { fileName: 'dot.png' });
    expect(image.message.type).toBe('image');
    type Processed = ServerEvents['attachment_processed'];
    const processed = () => eventData<Processed>(bob, 'attachment_processed').find((e) => e.messageId === image.message._id);
    const ready = async (): Promise<Attachment | undefined> => {
      if (image.message.attachment?.status === 'ready') return image.message.attachment;
      await waitFor(() => processed() !== undefined, 'the thumbnail is ready');
      return processed()?.attachment;
    };
    const attachment = await ready();
    expect(attachment).toMatchObject({ status: 'ready', width: 2, height: 2 });
    const thumbnail = await fetch(attachment?.thumbnailUrl as string);
    expect(thumbnail.status).toBe(200);
    expect(new Uint8Array(await thumbnail.arrayBuffer()).slice(0, 2)).toEqual(Uint8Array.from([0xff, 0xd8]));
  });

  it('refuses a type or a size the deployment does not accept before uploading anything', async () => {
    const { alice, chat } = await pair();
    const html = { bytes: new TextEncoder().encode('<script>alert(1)</script>'), name: 'page.html', type: 'text/html' };
    await expect(alice.client.uploadFile(chat._id, html)).rejects.toMatchObject({ code: 'validation_failed', status: 422 });
    const huge = alice.client.rest.createUpload(chat._id, { fileName: 'huge.zip', contentType: 'application/zip', size: 26 * 1024 * 1024 });
    await expect(huge).rejects.toBeInstanceOf(ChatError);
    await expect(huge).rejects.toMatchObject({ code: 'payload_too_large' });
  });
});

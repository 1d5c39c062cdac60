/**
 * Uploading a file the way the backend expects: the bytes go straight to the attachments bucket with the signed
 * form the API issued (S3 refuses any other size, type or key), never through the API. Browsers report upload
 * progress through XMLHttpRequest; elsewhere (Node) the upload is one `fetch`, reported at its start and end.
 */

import { ChatError } from './errors.js';
import type { UploadForm } from './protocol.js';

/** A file to upload: a browser `File`/`Blob` (with a name), or bytes with a name and type. */
export type Uploadable = Blob | { bytes: Uint8Array; name: string; type: string };

export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadOptions {
  /** Called as bytes go out (browsers), or at start and end (elsewhere). */
  onProgress?: (progress: UploadProgress) => void;
  /** Defaults to the file's own name (`File.name`), else "file". */
  fileName?: string;
  /** Defaults to the file's own type; the deployment decides which types it accepts. */
  contentType?: string;
  signal?: AbortSignal;
}

/** Name, type and bytes of an `Uploadable`, as the API and S3 are told them. */
export function describeFile(file: Uploadable, options: UploadOptions = {}): { fileName: string; contentType: string; blob: Blob } {
  if (file instanceof Blob) {
    const named = (file as Blob & { name?: unknown }).name;
    return {
      fileName: options.fileName ?? (typeof named === 'string' && named !== '' ? named : 'file'),
      contentType: options.contentType ?? (file.type || 'application/octet-stream'),
      blob: file,
    };
  }
  const contentType = options.contentType ?? file.type;
  return { fileName: options.fileName ?? file.name, contentType, blob: new Blob([file.bytes as BlobPart], { type: contentType }) };
}

/** Posts `blob` with `form`. S3's refusal (wrong size or type, expired form) becomes a `ChatError`. */
export async function postUpload(form: UploadForm, blob: Blob, options: UploadOptions = {}): Promise<void> {
  const body = new FormData();
  for (const [name, value] of Object.entries(form.fields)) body.append(name, value);
  // S3 reads the fields before the file: the file goes last.
  body.append('file', blob);
  const total = blob.size;
  const progress = options.onProgress ?? (() => {});
  const XHR = (globalThis as { XMLHttpRequest?: typeof XMLHttpRequest }).XMLHttpRequest;
  if (XHR) {
    await new Promise<void>((resolve, reject) => {
      const request = new XHR();
      request.open('POST', form.url);
      request.upload.onprogress = (event) => progress({ loaded: event.loaded, total });
      request.onload = () =>
        request.status >= 200 && request.status < 300
          ? (progress({ loaded: total, total }), resolve())
          : reject(refused(request.status, request.responseText));
      request.onerror = () => reject(ChatError.client('network', 'the upload to storage failed'));
      request.onabort = () => reject(ChatError.client('closed', 'the upload was cancelled'));
      options.signal?.addEventListener('abort', () => request.abort(), { once: true });
      request.send(body);
    });
    return;
  }
  progress({ loaded: 0, total });
  let response: Response;
  try {
    response = await fetch(form.url, { method: 'POST', body, signal: options.signal ?? null });
  } catch (cause) {
    throw ChatError.client('network', 'the upload to storage failed', { cause });
  }
  if (!response.ok) throw refused(response.status, await response.text());
  progress({ loaded: total, total });
}

/** S3 answers a refused POST with `<Error><Code>…</Code><Message>…</Message></Error>`. */
function refused(status: number, xml: string): ChatError {
  const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1] ?? 'Error';
  const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1] ?? 'storage refused the upload';
  const chatCode = code === 'EntityTooLarge' ? 'payload_too_large' : status === 403 ? 'forbidden' : 'validation_failed';
  return new ChatError(status, chatCode, `${code}: ${message}`, { operation: 'POST upload form' });
}

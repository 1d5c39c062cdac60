/**
 * Reporting a message or a user: a reason, then send. Shown inline where the report was asked for; closes once
 * the report is taken.
 */

import type { ReportReason, ReportTarget } from '@chat/sdk';
import { useState } from 'preact/hooks';

import { store } from '../state';

const REASONS: Array<[ReportReason, string]> = [
  ['spam', 'Spam'],
  ['harassment', 'Harassment'],
  ['hate', 'Hate'],
  ['sexual', 'Sexual content'],
  ['violence', 'Violence'],
  ['self_harm', 'Self-harm'],
  ['other', 'Something else'],
];

export function ReportForm({ target, onDone }: { target: ReportTarget; onDone: () => void }) {
  const [reason, setReason] = useState<ReportReason>('spam');
  const submit = async (event: Event) => {
    event.preventDefault();
    if (await store.security.report(target, reason)) onDone();
  };
  return (
    <form class="report row" data-testid="report-form" onSubmit={(event) => void submit(event)}>
      <select data-testid="report-reason" value={reason} onChange={(e) => setReason((e.target as HTMLSelectElement).value as ReportReason)}>
        {REASONS.map(([value, label]) => (
          <option value={value}>{label}</option>
        ))}
      </select>
      <button type="submit" data-testid="report-send">
        Report
      </button>
      <button type="button" class="secondary" onClick={onDone}>
        Cancel
      </button>
    </form>
  );
}

/** A "Report" link that opens the form in place. */
export function ReportButton({ target, testid }: { target: ReportTarget; testid: string }) {
  const [open, setOpen] = useState(false);
  return open ? (
    <ReportForm target={target} onDone={() => setOpen(false)} />
  ) : (
    <button type="button" class="link" data-testid={testid} onClick={() => setOpen(true)}>
      Report
    </button>
  );
}

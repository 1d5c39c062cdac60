/**
 * Runs around every integration test: afterwards every client is disconnected, and the test fails if any frame
 * it sent or received broke docs/asyncapi.yaml. After each file, the frames checked are listed by message.
 */

import { afterAll, afterEach, expect } from 'vitest';

import { describeViolations } from './spec.js';
import { checker, disconnectAll } from './stack.js';

afterEach(() => {
  disconnectAll();
  const violations = checker.violations.splice(0);
  // Assert on the readable report, so a failure shows the frames (cut) instead of a huge object diff.
  expect(describeViolations(violations), 'frames that break docs/asyncapi.yaml').toBe('');
  expect(checker.unconsumedExpectations(), 'frames sent invalid on purpose that docs/asyncapi.yaml accepts').toEqual([]);
});

afterAll(() => {
  const counts = [...checker.coverage.entries()].sort(([a], [b]) => a.localeCompare(b));
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  console.log(`frames checked against docs/asyncapi.yaml: ${total} (${counts.map(([k, n]) => `${k}×${n}`).join(', ')})`);
});

/**
 * Reconnect delays: exponential growth with jitter, capped.
 *
 * Why this module exists: after a deploy or a network blip every client reconnects at once; spreading the
 * retries (jitter) keeps them from arriving in synchronized waves, and the cap keeps an offline client polling
 * at a modest rate. A pure function, so the schedule is easy to test and to reason about.
 */

export interface BackoffOptions {
  /** Delay cap of the first retry, in ms. */
  initialDelayMs: number;
  /** Upper bound of any delay, in ms. */
  maxDelayMs: number;
  /** Growth per attempt. */
  multiplier: number;
  /**
   * Share of the delay that is random, 0..1: the delay of attempt n is uniformly distributed in
   * `[cap * (1 - jitter), cap]` with `cap = min(maxDelayMs, initialDelayMs * multiplier^n)`.
   */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  multiplier: 2,
  jitter: 0.5,
};

/** The delay before retry number `attempt` (0 for the first retry). `random` returns values in [0, 1). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt);
  const cap = Math.min(options.maxDelayMs, options.initialDelayMs * options.multiplier ** exponent);
  const jitter = Math.min(1, Math.max(0, options.jitter));
  return Math.round(cap * (1 - jitter) + cap * jitter * random());
}

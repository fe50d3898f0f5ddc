// Push debouncing: run once things have been quiet for `quietMs`, but never later than `maxDelayMs`
// after the first change, so a steady stream of changes cannot starve the proxies.
export class Debouncer {
  private first?: number;
  private timer?: NodeJS.Timeout;
  private reasons = new Set<string>();

  constructor(
    private readonly run: (reasons: string[]) => void,
    private readonly quietMs = 100,
    private readonly maxDelayMs = 1000,
  ) {}

  trigger(reason: string): void {
    const now = Date.now();
    this.reasons.add(reason);
    this.first ??= now;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.quietMs, this.first + this.maxDelayMs - now));
    this.timer = setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    const reasons = [...this.reasons];
    this.reasons.clear();
    this.first = undefined;
    this.timer = undefined;
    this.run(reasons);
  }

  /** Runs now if something is pending (used on shutdown and in tests). */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.fire();
    }
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.reasons.clear();
    this.first = undefined;
  }
}

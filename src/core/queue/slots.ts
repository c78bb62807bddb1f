/**
 * The load slots of `--jobs N`: a counting semaphore whose tryTake() is
 * synchronous when a slot is free (no extra tick with jobs = 1); waiters get
 * a released slot first come, first served.
 */
export class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}
  tryTake(): boolean {
    if (this.free === 0) return false;
    this.free--;
    return true;
  }
  take(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(); // the slot passes to the next waiter, first come first served
    else this.free++;
  }
}

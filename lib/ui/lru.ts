// A least-recently-used map bounded by entry count and by total weight (bytes, roughly), for
// the UI's caches of rendered READMEs and pages.

export class Lru<V> {
  private readonly map = new Map<string, { value: V; weight: number }>();
  private total = 0;

  constructor(
    private readonly maxWeight: number,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get weight(): number {
    return this.total;
  }

  get(key: string): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  /** Keep a value (not if it alone would take more than a quarter of the budget). */
  set(key: string, value: V, weight: number): void {
    const old = this.map.get(key);
    if (old) {
      this.map.delete(key);
      this.total -= old.weight;
    }
    if (weight > this.maxWeight / 4) return;
    this.map.set(key, { value, weight });
    this.total += weight;
    for (const [k, v] of this.map) {
      if (this.total <= this.maxWeight && this.map.size <= this.maxEntries) break;
      this.map.delete(k);
      this.total -= v.weight;
    }
  }
}

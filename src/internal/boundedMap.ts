/**
 * A Map of at most `max` entries: when full, adding drops the oldest entry
 * (insertion order). For caches and hints whose loss only costs a rebuild.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super()
  }
  override set(key: K, value: V): this {
    if (this.size >= this.max && !this.has(key)) this.delete(this.keys().next().value!)
    return super.set(key, value)
  }
}

import type { LockKv } from "../../LockKv.js"
import type { Manager } from "./leases.js"
import type { Lines } from "./localQueue.js"
import type { Timer } from "./timers.js"

/**
 * What the lock engine keeps per store: its timer (every wake-up of its
 * locks), its lease manager (renewals, validity deadlines) and the lines in
 * which the fibers of this process take turns per key. Per store, so two
 * stores (two Redis servers or namespaces) never share any of it; kept beside
 * the store (weakly), so it goes with it.
 */
export interface StoreState {
  /** Started by the first wait (timers.ts). */
  timer: Timer | undefined
  /** Started by the first lock held (leases.ts). */
  manager: Manager | undefined
  readonly lines: Lines
}

const states = new WeakMap<LockKv.Service, StoreState>()

/** The store's state, made on first use. */
export const storeState = (store: LockKv.Service): StoreState => {
  let state = states.get(store)
  if (state === undefined) {
    state = { timer: undefined, manager: undefined, lines: { byKey: new Map(), free: 0 } }
    states.set(store, state)
  }
  return state
}

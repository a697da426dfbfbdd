/**
 * redlock 5.0.0-beta.2 ships `dist/index.d.ts`, but its `exports` map has no
 * `types` condition, so TypeScript (NodeNext) cannot find it. This declares the
 * part of its API the bench uses, copied from that file.
 */
declare module "redlock" {
  import type { EventEmitter } from "node:events"
  import type { Cluster, Redis } from "ioredis"

  export interface Settings {
    readonly driftFactor: number
    readonly retryCount: number
    readonly retryDelay: number
    readonly retryJitter: number
    readonly automaticExtensionThreshold: number
  }

  export type RedlockAbortSignal = AbortSignal & { error?: Error }

  export default class Redlock extends EventEmitter {
    constructor(clients: Iterable<Redis | Cluster>, settings?: Partial<Settings>)
    quit(): Promise<void>
    using<T>(
      resources: Array<string>,
      duration: number,
      settings: Partial<Settings>,
      routine?: (signal: RedlockAbortSignal) => Promise<T>
    ): Promise<T>
    using<T>(
      resources: Array<string>,
      duration: number,
      routine: (signal: RedlockAbortSignal) => Promise<T>
    ): Promise<T>
  }
}

// The original helper's usage example, unchanged apart from the import path and
// the last line (which closes the store). `npm run seed` runs it: in memory by
// default, on Redis when REDIS_URL is set. test/promise.test.ts runs it on both.
import { setTimeout } from "node:timers/promises"
import { useLock } from "../src/promise.js" // Adjust path as needed

const lockKvStore = useLock()

async function performCriticalOperation(resourceId: string) {
  const lockKey = `resource:${resourceId}:lock`
  const lockTimeoutMs = 5000 // Lock valid for 5 seconds

  try {
    // Attempt to acquire the lock
    // Assuming the Kv store has a `set` method with NX (Not Exists) and PX (milliseconds TTL) options
    const acquired = await lockKvStore.set(lockKey, "locked", { NX: true, PX: lockTimeoutMs })

    if (acquired) {
      console.log(`Lock acquired for ${resourceId}`)
      // --- Critical section ---
      await setTimeout(1000) // Simulate work
      console.log(`Work done for ${resourceId}`)
      // --- End critical section ---
    } else {
      console.log(`Could not acquire lock for ${resourceId}, already locked.`)
      // Handle inability to acquire lock (e.g., retry, or skip)
      return false
    }
  } catch (error) {
    console.error(`Error during locking operation for ${resourceId}:`, error)
    return false
  } finally {
    // Release the lock by deleting the key, only if it was acquired by this instance.
    // More robust implementations might check the lock's value before deleting.
    // For simplicity, we assume if we got here after acquiring, we should try to release.
    // However, the KV store itself doesn't track who acquired it.
    // A common pattern is to store a unique ID in the lock value and check it before deleting.
    if (await lockKvStore.get(lockKey) === "locked") { // Simplified check
      await lockKvStore.del(lockKey)
      console.log(`Lock released for ${resourceId}`)
    }
  }
  return true
}

async function main() {
  await performCriticalOperation("my-resource-123")
  // Simulating another attempt, which might fail if the first one is still holding the lock (if local)
  // or if another process holds it (if distributed with Redis)
  await performCriticalOperation("my-resource-123")
}

// Added to the seed: close the store so the process can exit.
main().finally(() => lockKvStore.close())
